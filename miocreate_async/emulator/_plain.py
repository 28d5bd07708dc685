"""Sample pictures without Pillow: flat cartoon faces written as PNG with the standard library.

What the pytest plugin's sample fixtures give on the base install (``pip install
miocreate-async``): real PNG files that any image library opens, with their faces where the
emulator's cartoon mode looks for them (``face_boxes``). With Pillow, the samples are drawn
with it instead (``_cartoon``).
"""

from __future__ import annotations

import random
import struct
import zlib

from ._cartoon import face_boxes
from ._faces import Box

__all__ = ["face_png", "scene_png"]

Colour = tuple[int, int, int]


def scene_png(width: int, height: int, faces: int = 1, seed: int = 0) -> bytes:
    """A background with ``faces`` flat ovals (skin, two eyes) at ``face_boxes``' places."""
    rng = random.Random(seed)
    canvas = _Canvas(width, height, _colour(rng, 40, 120))
    for box in face_boxes(width, height, faces):
        _face(canvas, box, rng)
    return canvas.png()


def face_png(seed: int = 0) -> bytes:
    """A face to swap in, 200x250."""
    rng = random.Random(f"face:{seed}")
    canvas = _Canvas(200, 250, _colour(rng, 150, 230))
    _face(canvas, (10, 10, 190, 240), rng)
    return canvas.png()


def _colour(rng: random.Random, low: int, high: int) -> Colour:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def _face(canvas: _Canvas, box: Box, rng: random.Random) -> None:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    canvas.oval(box, (rng.randint(200, 255), rng.randint(150, 210), rng.randint(110, 170)))
    eye = max(2, w // 12)
    for x in (0.3, 0.7):
        cx, cy = left + int(w * x), top + int(h * 0.38)
        canvas.oval((cx - eye, cy - eye, cx + eye, cy + eye), (30, 30, 80))
    mouth = (left + int(w * 0.35), top + int(h * 0.68), left + int(w * 0.65), top + int(h * 0.74))
    canvas.oval(mouth, (150, 30, 40))


class _Canvas:
    """RGB rows, filled span by span (an oval is one span a row: fast in pure Python)."""

    def __init__(self, width: int, height: int, background: Colour) -> None:
        self.width, self.height = width, height
        self.rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def oval(self, box: Box, colour: Colour) -> None:
        left, top, right, bottom = box
        cx, cy = (left + right) / 2, (top + bottom) / 2
        rx, ry = max((right - left) / 2, 1), max((bottom - top) / 2, 1)
        for y in range(max(0, top), min(self.height, bottom)):
            dy = (y + 0.5 - cy) / ry
            if dy * dy >= 1:
                continue
            half = rx * (1 - dy * dy) ** 0.5
            start, end = max(0, round(cx - half)), min(self.width, round(cx + half))
            if end > start:
                self.rows[y][start * 3 : end * 3] = bytes(colour) * (end - start)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)  # filter 0 on each row
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"".join(
            (
                b"\x89PNG\r\n\x1a\n",
                _chunk(b"IHDR", header),
                _chunk(b"IDAT", zlib.compress(raw, 6)),
                _chunk(b"IEND", b""),
            )
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
