"""The emulator's vision mode: what finding and swapping a face costs on one core.

Issue 15 asks that detection and a swap of a 1-megapixel photo take well under a second on one
core. OpenCV is held to one thread (``cv2.setNumThreads(1)``) and the CPU time of this thread is
measured, so the figures do not depend on how busy the machine's other cores are; wall time is
shown beside it. Inputs are the public-domain samples (``miocreate_async.emulator.samples``),
scaled to the sizes in the table.

    python -m benchmarks.vision [--smoke | --full] [--rounds N]
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks._common import Table, base_parser, header, median

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import numpy.typing as npt


def main(argv: Sequence[str] | None = None) -> int:
    args = base_parser(__doc__ or "", rounds=5).parse_args(argv)
    import cv2
    import numpy as np
    from PIL import Image

    from miocreate_async.emulator import _video, _vision, samples
    from miocreate_async.emulator._looks import Vision

    cv2.setNumThreads(1)
    rounds = args.rounds or (1 if args.smoke else (20 if args.full else 5))
    header(
        "Vision mode",
        args,
        f"{rounds} rounds per size; CPU seconds of the measuring thread (OpenCV on one thread); "
        "medians.",
    )
    photo = np.asarray(Image.open(io.BytesIO(samples.photo(real=True))).convert("RGB"))
    face_image = np.asarray(Image.open(io.BytesIO(samples.face(real=True))).convert("RGB"))
    face = _vision.largest(face_image)
    table = Table("photo", "detect ms (CPU)", "detect + swap ms (CPU)", "detect + swap ms (wall)")
    worst = 0.0
    for side in (512, 1000, 2000):
        image = np.ascontiguousarray(cv2.resize(photo, (side, side)), dtype=np.uint8)
        detect, both, wall = [], [], []
        for _ in range(rounds):
            started, clock = time.thread_time(), time.perf_counter()
            [target] = _vision.detect(image)
            detect.append(time.thread_time() - started)
            _vision.swap(image, target, face_image, face)
            both.append(time.thread_time() - started)
            wall.append(time.perf_counter() - clock)
        if side == 1000:
            worst = median(both)
        table.add(
            f"{side}x{side} ({side * side / 1e6:.1f} MP)",
            median(detect) * 1000,
            median(both) * 1000,
            median(wall) * 1000,
        )
    print(table.render(), end="\n\n")

    video = Table("video", "frames", "CPU s (this thread)", "wall s")
    with tempfile.TemporaryDirectory(prefix="miocreate-bench-") as folder:
        new_face = Path(folder, "face.jpg")
        new_face.write_bytes(samples.face(real=True))
        sample, moving = Path(folder, "sample.mp4"), Path(folder, "moving.mp4")
        sample.write_bytes(samples.video(real=True))
        # The docs' figure: a 3-second 480x480 clip at 30 frames a second, the head moving.
        _video.encode(moving, _moving_head(photo, 90, 480), Fraction(30))
        for clip, frames in ((sample, 30), (moving, 90)):
            started, clock = time.thread_time(), time.perf_counter()
            result = Vision().swap_video(
                clip, [(None, new_face)], Path(folder, "out"), Path(folder, "c"), Path(folder, "t")
            )
            cpu, wall_video = time.thread_time() - started, time.perf_counter() - clock
            name = "sample" if clip is sample else "moving head"
            size = f"{result.width}x{result.height}, {result.duration:g} s"
            video.add(f"{name}, {size}", frames, cpu, wall_video)
    print(video.render(), end="\n\n")
    print(
        f"detect + swap of a 1-megapixel photo: {worst * 1000:.0f} ms of one core "
        f"(target well under 1000 ms: {'met' if worst < 0.5 else 'MISSED'})"
    )
    return 0


def _moving_head(
    photo: npt.NDArray[np.uint8], count: int, side: int
) -> Iterator[npt.NDArray[np.uint8]]:
    """The portrait tilting its head and drifting sideways, ``count`` frames of ``side`` square."""
    import cv2
    import numpy as np

    height, width = photo.shape[:2]
    for index in range(count):
        phase = index / max(1, count - 1)
        matrix = cv2.getRotationMatrix2D((width / 2, height * 0.4), 8 * np.sin(phase * 6.28), 1.0)
        matrix[0, 2] += 20 * np.sin(phase * 3.14)
        moved = cv2.warpAffine(photo, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
        yield np.ascontiguousarray(cv2.resize(moved, (side, side)), dtype=np.uint8)


if __name__ == "__main__":
    sys.exit(main())
