"""The cartoon mode's pictures: scenes with cartoon faces where its "detection" finds them, a
face, and a minimal MP4 (the public ``write_sample_*`` functions, and ``samples(real=False)``).

Images need Pillow (the ``emulator`` extra); the video is written by hand.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from ._faces import Box

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "draw_scene",
    "face_boxes",
    "write_sample_face",
    "write_sample_photo",
    "write_sample_video",
]


def face_boxes(width: int, height: int, count: int) -> list[Box]:
    """Where faces are in a picture: the emulator "detects" and draws them at the same places.

    Faces sit side by side on one line, a little above the middle, each 4:5 (taller than wide).
    """
    boxes = []
    slot = width / max(count, 1)
    face_width = max(8, int(min(slot * 0.6, height * 0.5)))
    face_height = min(height, int(face_width * 1.25))
    top = max(0, int(height * 0.45 - face_height / 2))
    for index in range(count):
        left = int(slot * index + (slot - face_width) / 2)
        boxes.append((left, top, left + face_width, top + face_height))
    return boxes


def _colour(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def _draw_face(image: Image.Image, box: Box, rng: random.Random) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    skin = (rng.randint(200, 255), rng.randint(150, 210), rng.randint(110, 170))
    draw.ellipse(box, fill=skin, outline=(60, 40, 30), width=max(1, w // 40))
    eye = max(2, w // 12)
    for x in (0.3, 0.7):
        cx, cy = left + int(w * x), top + int(h * 0.38)
        draw.ellipse((cx - eye, cy - eye, cx + eye, cy + eye), fill=(255, 255, 255))
        draw.ellipse(
            (cx - eye // 2, cy - eye // 2, cx + eye // 2, cy + eye // 2), fill=(30, 30, 80)
        )
    nose_x, nose_y = left + w // 2, top + int(h * 0.58)
    draw.polygon(
        [(nose_x, nose_y - h // 10), (nose_x - w // 14, nose_y), (nose_x + w // 14, nose_y)],
        fill=(skin[0] - 30, skin[1] - 40, skin[2] - 40),
    )
    draw.arc(
        (left + int(w * 0.33), top + int(h * 0.62), left + int(w * 0.67), top + int(h * 0.8)),
        start=0,
        end=180,
        fill=(150, 30, 40),
        width=max(1, w // 30),
    )


def draw_scene(width: int, height: int, faces: int = 1, seed: int = 0) -> Image.Image:
    """A background with ``faces`` cartoon faces at ``face_boxes``' places."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), _colour(rng, 40, 120))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randint(10, max(11, width // 6))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_colour(rng, 60, 180))
    for box in face_boxes(width, height, faces):
        _draw_face(image, box, rng)
    return image


def write_sample_photo(
    path: str | os.PathLike[str],
    seed: int = 0,
    *,
    faces: int = 1,
    size: tuple[int, int] = (640, 480),
) -> Path:
    """A JPEG photo with cartoon faces, where the emulator's detection will find them."""
    path = Path(path)
    draw_scene(*size, faces=faces, seed=seed).save(path, "JPEG", quality=90)
    return path


def write_sample_face(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """A face to swap in (PNG, or JPEG for a .jpg/.jpeg name), 200x250."""
    from PIL import Image

    path = Path(path)
    rng = random.Random(f"face:{seed}")
    image = Image.new("RGB", (200, 250), _colour(rng, 150, 230))
    _draw_face(image, (10, 10, 190, 240), rng)
    image.save(path, "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")
    return path


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def write_sample_video(
    path: str | os.PathLike[str],
    duration: float = 2.0,
    size: int | None = None,
    *,
    width: int = 640,
    height: int = 360,
) -> Path:
    """A minimal MP4 (ftyp, moov with mvhd and a track header, mdat) of ``duration`` seconds.

    ``size`` pads the file to that many bytes (sparse where the file system allows), so large
    uploads can be tested without large writes. It plays nowhere, but it is a valid container.
    """
    path = Path(path)
    timescale = 1000
    length = round(duration * timescale)
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    mvhd = _box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, timescale, length)
        + struct.pack(">IH10x", 0x10000, 0x100)
        + _MATRIX
        + bytes(24)
        + struct.pack(">I", 2),
    )
    tkhd = _box(
        b"tkhd",
        struct.pack(">B3sIIIII8xhhH2x", 0, b"\x00\x00\x03", 0, 0, 1, 0, length, 0, 0, 0)
        + _MATRIX
        + struct.pack(">II", width << 16, height << 16),
    )
    moov = _box(b"moov", mvhd + _box(b"trak", tkhd))
    head = ftyp + moov
    total = max(size or 0, len(head) + 8 + 64)
    mdat_size = total - len(head)
    with open(path, "wb") as file:
        file.write(head)
        if mdat_size > 0xFFFFFFFF:
            file.write(struct.pack(">I4sQ", 1, b"mdat", mdat_size))
        else:
            file.write(struct.pack(">I4s", mdat_size, b"mdat"))
        file.truncate(total)
    return path
