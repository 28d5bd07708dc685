"""Real, playable videos for vision mode: decoded and encoded with PyAV (its wheels ship FFmpeg).

Results are H.264 in MP4 (yuv420p, so every player opens them), without sound. Only the first
``MAX_SECONDS`` of an input are processed, so a long clip cannot hold a worker for minutes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import attrs
import av
import av.error
import numpy as np

from ._faces import Refusal
from ._vision import Image

__all__ = ["MAX_SECONDS", "SAMPLE_RATE", "Clip", "Frames", "encode", "read"]

#: How much of an input video vision mode swaps (and so how long its results are at most).
MAX_SECONDS = 20.0
#: Frames a second of the sample video.
SAMPLE_RATE = Fraction(15)
_DEFAULT_RATE = Fraction(24)
_UNDECODABLE = "File exception occurred: the video cannot be decoded"

Frames = Iterator[Image]


@attrs.frozen
class Clip:
    """A decoded video's frames (lazily) and rate."""

    rate: Fraction
    frames: Frames


@contextlib.contextmanager
def read(path: Path) -> Iterator[Clip]:
    """``path`` opened for decoding: its frames (RGB, at most ``MAX_SECONDS``) and rate.

    A file FFmpeg cannot read, or without a video stream, is the service's 701."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise Refusal(701, _UNDECODABLE) from exc
    with container:
        if not container.streams.video:
            raise Refusal(701, _UNDECODABLE)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = Fraction(stream.average_rate) if stream.average_rate else _DEFAULT_RATE
        limit = max(1, math.floor(MAX_SECONDS * rate))

        def frames() -> Frames:
            try:
                for index, frame in enumerate(container.decode(stream)):
                    if index >= limit:
                        return
                    yield np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                raise Refusal(701, _UNDECODABLE) from exc

        yield Clip(rate, frames())


def encode(path: Path, frames: Iterable[Image], rate: Fraction) -> tuple[int, int, float]:
    """Write ``frames`` as an H.264 MP4; the frame size and duration written."""
    count, width, height = 0, 0, 0
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = None
        for image in frames:
            if stream is None:
                # yuv420p needs even sides.
                height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
                stream = container.add_stream(_codec(), rate=rate)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = {"crf": "23", "preset": "superfast"}
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(image[:height, :width]), format="rgb24"
            )
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        if stream is None:
            raise ValueError("the video has no frames")
        for packet in stream.encode():
            container.mux(packet)
    return width, height, float(count / rate)


def _codec() -> str:
    available = av.codecs_available
    return next(name for name in ("libx264", "libopenh264", "mpeg4") if name in available)
