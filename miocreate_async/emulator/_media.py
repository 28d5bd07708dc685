"""Facts about stored video files, read from the MP4 boxes without decoding anything."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import attrs

from .._mp4 import boxes, in_file, in_memory, mvhd_seconds

__all__ = ["VideoInfo", "probe_video"]

# A moov box larger than this is not worth reading to report a duration.
_MAX_MOOV = 64 * 1024 * 1024


@attrs.frozen
class VideoInfo:
    duration: float = 0.0
    width: int | None = None
    height: int | None = None


def _parse_moov(data: bytes) -> VideoInfo:
    duration, width, height = 0.0, None, None
    read = in_memory(data)
    for kind, start, end in boxes(read, 0, len(data)):
        if kind == b"mvhd":
            duration = mvhd_seconds(data[start:end]) or duration
        elif kind == b"trak" and width is None:
            for inner, inner_start, inner_end in boxes(read, start, end):
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
            for kind, start, end in boxes(in_file(file), 0, size):
                if kind == b"moov" and end - start <= _MAX_MOOV:
                    file.seek(start)
                    return _parse_moov(file.read(end - start))
    except (OSError, struct.error):
        pass
    return VideoInfo()
