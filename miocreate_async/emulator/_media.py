"""Facts about stored video files, read from the MP4 boxes without decoding anything."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import attrs

__all__ = ["VideoInfo", "probe_video"]

# A moov box larger than this is not worth reading to report a duration.
_MAX_MOOV = 64 * 1024 * 1024


@attrs.frozen
class VideoInfo:
    duration: float = 0.0
    width: int | None = None
    height: int | None = None


#: Reads ``length`` bytes at ``offset``: of a file (seeking) or of bytes in memory.
_Read = Callable[[int, int], bytes]


def _boxes(read: _Read, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, content start, box end) of the boxes between ``start`` and ``end``; only the
    headers are read, so a file's bodies are skipped by seeking."""
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


def _in_memory(data: bytes) -> _Read:
    return lambda offset, length: data[offset : offset + length]


def _in_file(file: BinaryIO) -> _Read:
    def read(offset: int, length: int) -> bytes:
        file.seek(offset)
        return file.read(length)

    return read


def _parse_moov(data: bytes) -> VideoInfo:
    duration, width, height = 0.0, None, None
    read = _in_memory(data)
    for kind, start, end in _boxes(read, 0, len(data)):
        if kind == b"mvhd" and end - start >= 20:
            if data[start] == 1:
                timescale, length = struct.unpack_from(">IQ", data, start + 20)
            else:
                timescale, length = struct.unpack_from(">II", data, start + 12)
            duration = length / timescale if timescale else 0.0
        elif kind == b"trak" and width is None:
            for inner, inner_start, inner_end in _boxes(read, start, end):
                offset = inner_start + (88 if data[inner_start] == 1 else 76)
                if inner == b"tkhd" and offset + 8 <= inner_end:
                    w, h = struct.unpack_from(">II", data, offset)
                    if w and h:
                        width, height = w >> 16, h >> 16
    return VideoInfo(duration, width, height)


def probe_video(path: Path) -> VideoInfo:
    """Duration (``mvhd``) and frame size (first ``tkhd`` with one); zeros when unknown."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            for kind, start, end in _boxes(_in_file(file), 0, size):
                if kind == b"moov" and end - start <= _MAX_MOOV:
                    file.seek(start)
                    return _parse_moov(file.read(end - start))
    except (OSError, struct.error):
        pass
    return VideoInfo()
