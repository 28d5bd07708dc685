"""What can be uploaded: the input types, kept apart so that naming them loads no I/O code."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable
from typing import BinaryIO

import attrs

__all__ = ["StreamSource", "UploadSource"]


@attrs.frozen
class StreamSource:
    """An async iterable of bytes with a declared size, for data that is not a file.

    ``size`` must be exact: it is sent as ``Content-Length``. The stream is read once, so an
    upload from it is not retried after it started (the error says so).
    """

    chunks: AsyncIterable[bytes]
    size: int
    file_name: str


UploadSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | StreamSource
