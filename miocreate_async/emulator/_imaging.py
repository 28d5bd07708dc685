"""The pictures behind results in cartoon mode (swapped images, covers, thumbnails, face crops),
and the picture files both modes write.

Cartoon mode does not look at pixels: faces are where ``face_boxes`` puts them, and a new face
is pasted there through an oval. Plain functions run in worker threads. Pillow is imported
lazily: it comes with the ``emulator`` extra, and only image work needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._cartoon import draw_scene, face_boxes
from ._faces import Box, Face, Refusal

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "MAX_PIXELS",
    "Crop",
    "ImagingUnavailable",
    "Picture",
    "cartoon_faces",
    "crop_faces",
    "image_size",
    "render_cover",
    "save",
    "swap_faces",
]

#: Longest side of a thumbnail.
THUMBNAIL_SIDE = 320
#: The most pixels an input image may have (50 megapixels, the largest photos phones take): a
#: bigger one is refused with 701 from its header alone, before any decoding (its pixels would
#: need gigabytes of arrays). The service documents no limit; this is the emulator's.
MAX_PIXELS = 50_000_000


_TOO_LARGE = f"File exception occurred: the image has more than {MAX_PIXELS:,} pixels"


class ImagingUnavailable(RuntimeError):
    """Pillow is missing: ``pip install 'miocreate-async[emulator]'``."""


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - the emulator extra installs it
        raise ImagingUnavailable(
            "the emulator needs Pillow for image results: pip install 'miocreate-async[emulator]'"
        ) from None
    return Image


@attrs.frozen
class Picture:
    """A written image file and its true dimensions."""

    width: int
    height: int
    size: int


@attrs.frozen
class Crop:
    """A detected face's crop: where the face is in the picture, and the crop file written."""

    face: Face
    picture: Picture
    #: The five landmarks, relative to the crop.
    keypoints: tuple[tuple[int, int], ...]


def image_size(path: Path) -> tuple[int, int] | None:
    """The dimensions of a decodable image of at most ``MAX_PIXELS``, or None (the service's
    code 701). Only the header is read for the size, before anything is decoded."""
    image_module = _pil()
    try:
        with image_module.open(path) as image:
            size: tuple[int, int] = image.size
            if not _small_enough(size):
                return None
            image.verify()
    except Exception:
        return None
    return size


def _small_enough(size: tuple[int, int]) -> bool:
    return size[0] * size[1] <= MAX_PIXELS


def save(
    image: Image.Image, path: Path, thumbnail: Path | None, *, png: bool = False
) -> tuple[Picture, Picture | None]:
    """Write ``image`` (JPEG, or PNG) and a JPEG thumbnail (stored files have no suffix)."""
    image.save(path, "PNG" if png else "JPEG", quality=90)
    picture = Picture(image.width, image.height, path.stat().st_size)
    if thumbnail is None:
        return picture, None
    small = image.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    small.save(thumbnail, "JPEG", quality=80)
    return picture, Picture(small.width, small.height, thumbnail.stat().st_size)


def _paste(image: Image.Image, box: Box, face_path: Path) -> None:
    """The new face, fitted to the box and pasted through an oval mask."""
    image_module = _pil()
    from PIL import ImageDraw

    width, height = box[2] - box[0], box[3] - box[1]
    with image_module.open(face_path) as face:
        fitted = face.convert("RGB").resize((width, height))
    mask = image_module.new("L", (width, height), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, width - 1, height - 1), fill=255)
    image.paste(fitted, box[:2], mask)


def swap_faces(
    main: Path,
    swaps: Sequence[tuple[Face | None, Path]],
    out: Path,
    thumbnail: Path,
    *,
    png: bool = False,
) -> tuple[Picture, Picture]:
    """``main`` with each face replaced; a None face is the single face detection would find."""
    image_module = _pil()
    with image_module.open(main) as source:
        image = source.convert("RGB")
    for face, new_face in swaps:
        box = face.box if face else face_boxes(image.width, image.height, 1)[0]
        _paste(image, box, new_face)
    picture, small = save(image, out, thumbnail, png=png)
    assert small is not None
    return picture, small


def render_cover(
    width: int, height: int, swaps: Sequence[tuple[Face | None, Path]], out: Path, thumbnail: Path
) -> tuple[Picture, Picture]:
    """A video's cover frame: the video itself is not decoded, so its scene is drawn."""
    _pil()
    count = max(1, len(swaps))
    image = draw_scene(width, height, faces=count)
    boxes = face_boxes(width, height, count)
    for index, (face, new_face) in enumerate(swaps):
        _paste(image, face.box if face else boxes[index], new_face)
    picture, small = save(image, out, thumbnail)
    assert small is not None
    return picture, small


def cartoon_faces(width: int, height: int, count: int) -> list[Face]:
    """Where cartoon mode "finds" ``count`` faces, with keypoints where draw_scene draws them."""
    spots = ((0.3, 0.38), (0.7, 0.38), (0.5, 0.55), (0.36, 0.72), (0.64, 0.72))
    return [
        Face(
            box,
            tuple(
                (box[0] + (box[2] - box[0]) * x, box[1] + (box[3] - box[1]) * y) for x, y in spots
            ),
        )
        for box in face_boxes(width, height, count)
    ]


def crop_faces(
    image: Image.Image, faces: Sequence[Face], outs: Sequence[Path], margin: float = 0.0
) -> list[Crop]:
    """One crop per face (its box grown by ``margin`` on each side), written to ``outs``."""
    crops = []
    for face, out in zip(faces, outs, strict=True):
        grow_x, grow_y = round(face.width * margin), round(face.height * margin)
        left, top = max(0, face.box[0] - grow_x), max(0, face.box[1] - grow_y)
        box: Box = (
            left,
            top,
            min(image.width, face.box[2] + grow_x),
            min(image.height, face.box[3] + grow_y),
        )
        picture, _ = save(image.crop(box), out, None, png=True)
        keypoints = tuple((round(x - left), round(y - top)) for x, y in face.keypoints)
        crops.append(Crop(face, picture, keypoints))
    return crops


def open_rgb(path: Path) -> Image.Image:
    """A stored picture as RGB, turned upright as its EXIF orientation says; 701 for one of more
    than ``MAX_PIXELS``, known from its header before any decoding."""
    image_module = _pil()
    from PIL import ImageOps

    with image_module.open(path) as source:
        if not _small_enough(source.size):
            raise Refusal(701, _TOO_LARGE)
        upright = ImageOps.exif_transpose(source)
        return upright.convert("RGB")
