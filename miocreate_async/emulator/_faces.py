"""A face in a picture, as both modes (cartoon and vision) find it, and the codes a look refuses
with (602 no face, 603 several)."""

from __future__ import annotations

import attrs

__all__ = ["Box", "Face", "Point", "Refusal"]

#: (left, top, right, bottom) in pixels.
Box = tuple[int, int, int, int]
Point = tuple[float, float]


@attrs.frozen
class Face:
    box: Box
    #: Eyes, nose, mouth corners, in the picture's coordinates; eyes and mouth corners in the
    #: order an upright view of the face shows them, left first (so in a picture turned upside
    #: down, the first eye is the one further right).
    keypoints: tuple[Point, ...]

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    def centre(self) -> Point:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


class Refusal(Exception):
    """What the pixels say about a task: it fails with this documented code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
