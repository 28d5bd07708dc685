"""The boxes of an MP4 file, read by their headers only (a file's bodies are skipped by
seeking): the emulator reads a video's length and size, the client's estimate its length."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

__all__ = ["Read", "boxes", "in_file", "in_memory", "mvhd_seconds"]

#: Reads ``length`` bytes at ``offset``: of a file (seeking) or of bytes in memory.
Read = Callable[[int, int], bytes]


def boxes(read: Read, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, content start, box end) of the boxes between ``start`` and ``end``."""
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack(">I4s", read(position, 8))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", read(position + 8, 8))
            header = 16
        elif size == 0:
            size = end - position
        if size < header:
            return
        yield kind, position + header, min(position + size, end)
        position += size


def in_memory(data: bytes) -> Read:
    return lambda offset, length: data[offset : offset + length]


def in_file(file: BinaryIO) -> Read:
    def read(offset: int, length: int) -> bytes:
        file.seek(offset)
        return file.read(length)

    return read


def mvhd_seconds(body: bytes) -> float | None:
    """The movie's length from an ``mvhd`` box's content (versions 0 and 1)."""
    if len(body) < 20:
        return None
    if body[0] == 1:
        if len(body) < 32:
            return None
        timescale, length = struct.unpack_from(">IQ", body, 20)
    else:
        timescale, length = struct.unpack_from(">II", body, 12)
    return length / timescale if timescale else None
