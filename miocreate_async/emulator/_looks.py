"""How the emulator looks at pictures: the cartoon mode (the default: no pixel is read, faces are
where the samples draw them) or the vision mode (faces found in the pixels, a real swap).

Both build the same results from stored files; the engine runs them in worker threads and does
not know which one it has. A look that finds no face, or several where one is needed, raises
``Refusal`` with the documented code (602, 603), and the task fails with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from .._formats import MediaType
from . import _imaging
from ._cartoon import draw_scene
from ._faces import Face, Refusal
from ._imaging import Crop, Picture
from ._media import probe_video
from ._storage import link_or_copy

if TYPE_CHECKING:
    from . import _vision

__all__ = ["Cartoon", "Looks", "Swap", "VideoResult", "Vision", "looks"]

#: A face to replace (None: the one face the picture must have) and the new face's file.
Swap = tuple["Face | None", Path]

# A video's frame size when its container does not say.
_DEFAULT_FRAME = (640, 360)
# Detected faces are cropped with this much of their box around them, as the service does.
_CROP_MARGIN = 0.25
# Frames between full detections in a video while no face is followed.
_SEARCH_EVERY = 5


@attrs.frozen
class VideoResult:
    duration: float
    width: int
    height: int
    cover: Picture
    thumbnail: Picture


class Looks(Protocol):
    def result_extension(self, media: MediaType) -> str:
        """The file extension of an image result for an input of this type."""

    def detect(
        self, main: Path, media: MediaType, count: int, out: Callable[[], Path]
    ) -> list[Crop]:
        """The faces of ``main``, each cropped to a new ``out()`` path, left to right."""

    def swap_image(
        self, main: Path, swaps: Sequence[Swap], png: bool, out: Path, thumbnail: Path
    ) -> tuple[Picture, Picture]:
        """``main`` with the faces replaced, as PNG or JPEG, and a JPEG thumbnail."""

    def swap_video(
        self, main: Path, swaps: Sequence[Swap], out: Path, cover: Path, thumbnail: Path
    ) -> VideoResult: ...


def looks(vision: bool) -> Looks:
    """The mode's looks; vision mode's packages are loaded now, so a missing one is told at once."""
    if not vision:
        return Cartoon()
    try:
        from . import _video, _vision  # noqa: F401
    except ImportError as exc:
        raise _imaging.ImagingUnavailable(
            f"vision mode needs the 'vision' extra ({exc.name} is missing): "
            "pip install 'miocreate-async[vision]'"
        ) from None
    return Vision()


class Cartoon:
    """Fast and without heavy dependencies: the default for tests."""

    def result_extension(self, media: MediaType) -> str:
        return "jpg"

    def detect(
        self, main: Path, media: MediaType, count: int, out: Callable[[], Path]
    ) -> list[Crop]:
        if media.is_video:
            info = probe_video(main)
            frame = (info.width, info.height) if info.width and info.height else _DEFAULT_FRAME
            image = draw_scene(*frame, faces=count)
        else:
            image = _imaging.open_rgb(main)
        faces = _imaging.cartoon_faces(image.width, image.height, count)
        return _imaging.crop_faces(image, faces, [out() for _ in faces])

    def swap_image(
        self, main: Path, swaps: Sequence[Swap], png: bool, out: Path, thumbnail: Path
    ) -> tuple[Picture, Picture]:
        return _imaging.swap_faces(main, swaps, out, thumbnail, png=png)

    def swap_video(
        self, main: Path, swaps: Sequence[Swap], out: Path, cover: Path, thumbnail: Path
    ) -> VideoResult:
        """The result is the input itself (a hard link costs no disk); its cover is drawn."""
        link_or_copy(main, out)
        info = probe_video(out)
        width, height = (info.width, info.height) if info.width and info.height else _DEFAULT_FRAME
        picture, small = _imaging.render_cover(width, height, swaps, cover, thumbnail)
        return VideoResult(info.duration, width, height, picture, small)


class Vision:
    """Faces found in the pixels (the ``vision`` extra: OpenCV, NumPy, PyAV)."""

    def result_extension(self, media: MediaType) -> str:
        # A PNG stays lossless, so what the swap did not touch stays exactly as it was.
        return "png" if media is MediaType.PNG else "jpg"

    def detect(
        self, main: Path, media: MediaType, count: int, out: Callable[[], Path]
    ) -> list[Crop]:
        from PIL import Image

        if media.is_video:
            array, faces = _first_faces(main)
        else:
            array = _array(_imaging.open_rgb(main))
            from . import _vision

            faces = _vision.detect(array)
        if not faces:
            raise Refusal(602, "No face detected")
        image = Image.fromarray(array)
        return _imaging.crop_faces(image, faces, [out() for _ in faces], _CROP_MARGIN)

    def swap_image(
        self, main: Path, swaps: Sequence[Swap], png: bool, out: Path, thumbnail: Path
    ) -> tuple[Picture, Picture]:
        from PIL import Image

        from . import _vision as vision

        array = _array(_imaging.open_rgb(main))
        pairs = _targets(vision.detect(array), swaps)
        for target, (face_array, face) in zip(pairs, _new_faces(swaps), strict=True):
            array = vision.swap(array, target, face_array, face)
        picture, small = _imaging.save(Image.fromarray(array), out, thumbnail, png=png)
        assert small is not None
        return picture, small

    def swap_video(
        self, main: Path, swaps: Sequence[Swap], out: Path, cover: Path, thumbnail: Path
    ) -> VideoResult:
        from PIL import Image

        from . import _video
        from . import _vision as vision

        new_faces = _new_faces(swaps)
        covers: list[_vision.Image] = []

        def swapped(frames: Iterator[_vision.Image]) -> Iterator[_vision.Image]:
            track: _vision.Track | None = None
            last: list[Face] | None = None  # where the faces were last seen
            for index, frame in enumerate(frames):
                faces = track.follow(frame) if track is not None else None
                if faces is None and (track is not None or index % _SEARCH_EVERY == 0):
                    # A detection when the faces are lost or not found yet: a few frames apart,
                    # as it costs a hundred times more than following them. Until they are
                    # first found, every turn of the picture; found again, the quick look.
                    found = vision.detect(frame, thorough=last is None)
                    faces = None
                    if found:
                        faces = (
                            _targets(found, swaps)
                            if last is None
                            else [_nearest(found, face) for face in last]
                        )
                    track = vision.Track(faces) if faces else None
                if faces is not None:
                    last = faces
                if faces is not None:
                    for target, (face_array, face) in zip(faces, new_faces, strict=True):
                        frame = vision.swap(frame, target, face_array, face)
                    if not covers:
                        covers.append(frame)
                yield frame

        try:
            with _video.read(main) as clip:
                width, height, duration = _video.encode(out, swapped(clip.frames), clip.rate)
            if not covers:
                raise Refusal(602, "No face detected in the video")
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        picture, small = _imaging.save(Image.fromarray(covers[0]), cover, thumbnail)
        assert small is not None
        return VideoResult(duration, width, height, picture, small)


def _array(image: object) -> _vision.Image:
    import numpy as np

    return np.asarray(image, dtype=np.uint8)


def _targets(found: Sequence[Face], swaps: Sequence[Swap]) -> list[Face]:
    """The faces the swaps replace: the named ones (nearest found), or the only one."""
    if not found:
        raise Refusal(602, "No face detected")
    if len(swaps) == 1 and swaps[0][0] is None:
        if len(found) > 1:
            raise Refusal(603, f"Multiple faces detected ({len(found)})")
        return [found[0]]
    return [_nearest(found, named) if named else found[0] for named, _ in swaps]


def _nearest(found: Sequence[Face], named: Face) -> Face:
    x, y = named.centre()
    return min(found, key=lambda face: (face.centre()[0] - x) ** 2 + (face.centre()[1] - y) ** 2)


def _new_faces(swaps: Sequence[Swap]) -> list[tuple[_vision.Image, Face]]:
    from . import _vision as vision

    faces = []
    for _, path in swaps:
        array = _array(_imaging.open_rgb(path))
        faces.append((array, vision.largest(array)))
    return faces


def _first_faces(video: Path) -> tuple[_vision.Image, list[Face]]:
    """The first frame with faces among the first seconds (two a second), and its faces."""
    from . import _video
    from . import _vision as vision

    first = None
    with _video.read(video) as clip:
        step = max(1, round(clip.rate / 2))
        for index, frame in enumerate(clip.frames):
            if first is None:
                first = frame
            if index % step:
                continue
            faces = vision.detect(frame)
            if faces:
                return frame, faces
            if index >= 4 * step * 2:
                break
    if first is None:
        raise ValueError("the video has no frames")
    return first, []
