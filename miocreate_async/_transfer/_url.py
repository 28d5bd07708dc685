"""Uploads from an http(s) URL: the source is streamed straight into the presigned PUT.

The PUT needs its length up front, so the source must send a ``Content-Length``; one that does
not (a chunked reply) is refused before anything is uploaded, rather than spooled to disk. The
source is read again from its start for a retry or a renewed upload URL, like a file.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import aiohttp

from .._errors import InvalidInputError, SourceNotFoundError
from .._formats import MAX_UPLOAD_BYTES, SNIFF_BYTES
from .._redact import redact_url
from ._inputs import (
    CHUNK_SIZE,
    PreparedUpload,
    UploadSource,
    _check,
    _name_for,
    is_url,
    prepare_upload,
)

__all__ = ["prepare_source", "prepare_url"]

#: Reading a source: connecting, then each read, may take this long.
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)


async def prepare_source(
    source: UploadSource,
    *,
    file_name: str | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    stall_timeout: float | None = None,
) -> PreparedUpload:
    """``prepare_upload``, and http(s) URLs too."""
    if is_url(source):
        assert isinstance(source, str)
        return await prepare_url(source, file_name=file_name, max_bytes=max_bytes)
    return await prepare_upload(
        source, file_name=file_name, max_bytes=max_bytes, stall_timeout=stall_timeout
    )


async def prepare_url(
    url: str, *, file_name: str | None = None, max_bytes: int = MAX_UPLOAD_BYTES
) -> PreparedUpload:
    """Check an http(s) source as a file is checked (size, name, first bytes), from the
    headers and first bytes of one GET; the upload reads it again."""
    shown = redact_url(url)
    own_name = PurePosixPath(urlsplit(url).path).name or None
    try:
        async with _get(url, shown) as response:
            size = _length(response, shown)
            head = await response.content.read(SNIFF_BYTES) if size else b""
    except aiohttp.ClientError as exc:
        raise SourceNotFoundError(f"cannot read the source {shown}: {exc}") from exc
    name = _name_for(file_name, own_name, head)
    media = _check(name, size, head, max_bytes, f"the source {shown}")

    async def chunks() -> AsyncGenerator[bytes, None]:
        async with _get(url, shown) as response:
            if _length(response, shown) != size:
                raise InvalidInputError(f"the source {shown} changed size since it was checked")
            async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                yield chunk

    return PreparedUpload(name, size, media, replayable=True, open=chunks)


@asynccontextmanager
async def _get(url: str, shown: str) -> AsyncIterator[aiohttp.ClientResponse]:
    # A session of its own, with no header of the client's: the API token never goes to
    # another host.
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as http,
        http.get(url, allow_redirects=True) as response,
    ):
        if response.status >= 400:
            raise SourceNotFoundError(f"the source {shown} answered HTTP {response.status}")
        yield response


def _length(response: aiohttp.ClientResponse, shown: str) -> int:
    if response.content_length is None:
        raise InvalidInputError(
            f"the source {shown} sends no Content-Length: the upload needs the size up front "
            "(save it to a file first, or pass a StreamSource with its size)"
        )
    return response.content_length
