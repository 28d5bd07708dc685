"""The pictures behind results: swapped images, covers, thumbnails and face crops.

Plain functions run in worker threads. Pillow is imported lazily: it comes with the
``emulator`` extra, and only image work needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._samples import Box, draw_scene, face_boxes

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "Crop",
    "ImagingUnavailable",
    "Picture",
    "crop_faces",
    "image_size",
    "render_cover",
    "swap_faces",
]

#: Longest side of a thumbnail.
THUMBNAIL_SIDE = 320


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
    box: Box
    picture: Picture
    #: The five landmarks, relative to the crop.
    keypoints: tuple[tuple[int, int], ...]


def image_size(path: Path) -> tuple[int, int] | None:
    """The dimensions of a decodable image, or None (the service's code 701)."""
    image_module = _pil()
    try:
        with image_module.open(path) as image:
            size: tuple[int, int] = image.size
            image.verify()
    except Exception:
        return None
    return size


def _save(image: Image.Image, path: Path, thumbnail: Path | None) -> tuple[Picture, Picture | None]:
    image.save(path, "PNG" if path.suffix == ".png" else "JPEG", quality=88)
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
    main: Path, swaps: Sequence[tuple[Box | None, Path]], out: Path, thumbnail: Path
) -> tuple[Picture, Picture]:
    """``main`` with each face replaced; a None box is the single face detection would find."""
    image_module = _pil()
    with image_module.open(main) as source:
        image = source.convert("RGB")
    for box, face in swaps:
        _paste(image, box or face_boxes(image.width, image.height, 1)[0], face)
    picture, small = _save(image, out, thumbnail)
    assert small is not None
    return picture, small


def render_cover(
    width: int, height: int, faces: Sequence[tuple[Box | None, Path]], out: Path, thumbnail: Path
) -> tuple[Picture, Picture]:
    """A video's cover frame: the video itself is not decoded, so its scene is drawn."""
    _pil()
    count = max(1, len(faces))
    image = draw_scene(width, height, faces=count)
    boxes = face_boxes(width, height, count)
    for index, (box, face) in enumerate(faces):
        _paste(image, box or boxes[index], face)
    picture, small = _save(image, out, thumbnail)
    assert small is not None
    return picture, small


def _keypoints(width: int, height: int) -> tuple[tuple[int, int], ...]:
    # Eyes, nose, mouth corners: where draw_scene draws them.
    spots = ((0.3, 0.38), (0.7, 0.38), (0.5, 0.55), (0.36, 0.72), (0.64, 0.72))
    return tuple((round(width * x), round(height * y)) for x, y in spots)


def crop_faces(main: Path | None, frame: tuple[int, int], outs: Sequence[Path]) -> list[Crop]:
    """One crop per output path, from ``main`` (or a drawn frame of a video of size ``frame``)."""
    image_module = _pil()
    if main is None:
        image = draw_scene(*frame, faces=len(outs))
    else:
        with image_module.open(main) as source:
            image = source.convert("RGB")
    crops = []
    for box, out in zip(face_boxes(image.width, image.height, len(outs)), outs, strict=True):
        picture, _ = _save(image.crop(box), out, None)
        crops.append(Crop(box, picture, _keypoints(picture.width, picture.height)))
    return crops
