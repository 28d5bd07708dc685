"""Vision mode: faces found in the pixels, and a swap a person recognises.

Detection uses the Haar cascades that OpenCV 4.x wheels ship under ``cv2.data`` (nothing is
downloaded). Five keypoints (eyes, nose, mouth corners) come from the eye cascade inside each
face, estimated from the face box where an eye is not found. A swap aligns the new face to the
target by a similarity transform of those keypoints, matches its colours (mean and spread in
Lab) and blends it in through a feathered oval: pixels outside the oval stay exactly as they were.

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

from ._faces import Box, Face, Point, Refusal

__all__ = ["Image", "detect", "largest", "swap"]

#: An RGB picture, height x width x 3.
Image = npt.NDArray[np.uint8]
_Floats = npt.NDArray[np.float32]

# Detection runs on a copy at most this long on its longer side: faces a user would swap stay
# well above the cascade's 24-pixel window, and a 12-megapixel photo costs what a small one does.
_DETECT_SIDE = 512
_MIN_FACE = 24

# Where the five keypoints sit relative to the eyes' midpoint, in eye distances, along the eye
# line (x) and across it (y); the ratios of the common 5-point face template.
_NOSE = (0.0, 0.57)
_MOUTH_LEFT = (-0.41, 1.15)
_MOUTH_RIGHT = (0.41, 1.15)
# Where eyes sit in a frontal face box, when the eye cascade does not find them.
_EYE_Y = 0.38
_EYE_X = (0.30, 0.70)

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


def _gray(image: Image) -> Image:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def _rects(found: object) -> list[list[int]]:
    """detectMultiScale's rectangles as lists (it answers an empty tuple when there are none)."""
    rects: list[list[int]] = np.asarray(found, dtype=np.int64).reshape(-1, 4).tolist()
    return rects


def detect(image: Image) -> list[Face]:
    """Every frontal face, left to right, with its five keypoints."""
    height, width = image.shape[:2]
    scale = min(1.0, _DETECT_SIDE / max(height, width))
    gray = _gray(image)
    small = (
        gray
        if scale == 1.0
        else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    )
    small = cv2.equalizeHist(small)
    found = _classifier("haarcascade_frontalface_alt2.xml").detectMultiScale(
        small, scaleFactor=1.15, minNeighbors=5, minSize=(_MIN_FACE, _MIN_FACE)
    )
    faces = []
    for x, y, w, h in _rects(found):
        box = _clip(
            (round(x / scale), round(y / scale), round((x + w) / scale), round((y + h) / scale)),
            width,
            height,
        )
        faces.append(Face(box, _keypoints(gray, box)))
    return sorted(faces, key=lambda face: (face.box[0], face.box[1]))


def largest(image: Image) -> Face:
    """The biggest face of a picture of a new face; 602 when there is none."""
    faces = detect(image)
    if not faces:
        raise Refusal(602, "No face detected in the face image")
    return max(faces, key=lambda face: face.width * face.height)


def _clip(box: Box, width: int, height: int) -> Box:
    left, top, right, bottom = box
    return (max(0, left), max(0, top), min(width, right), min(height, bottom))


def _keypoints(gray: npt.NDArray[np.uint8], box: Box) -> tuple[Point, ...]:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    estimated = [(left + w * x, top + h * _EYE_Y) for x in _EYE_X]
    eyes = list(estimated)
    upper = cv2.equalizeHist(gray[top : top + int(h * 0.6), left:right])
    size = max(6, w // 10)
    found = _classifier("haarcascade_eye.xml").detectMultiScale(
        upper, scaleFactor=1.1, minNeighbors=3, minSize=(size, size), maxSize=(w // 2, w // 2)
    )
    # The biggest eye in each half of the face; the other half keeps its estimate.
    for ex, ey, ew, eh in sorted(_rects(found), key=lambda eye: -eye[2]):
        cx, cy = float(left + ex + ew / 2), float(top + ey + eh / 2)
        side = 0 if cx < left + w / 2 else 1
        if eyes[side] is estimated[side] and top + h * 0.2 < cy < top + h * 0.55:
            eyes[side] = (cx, cy)
    return _five(eyes[0], eyes[1])


def _five(left_eye: tuple[float, float], right_eye: tuple[float, float]) -> tuple[Point, ...]:
    (lx, ly), (rx, ry) = left_eye, right_eye
    cx, cy = (lx + rx) / 2, (ly + ry) / 2
    ux, uy = rx - lx, ry - ly  # along the eyes; (-uy, ux) points down the face

    def at(along: float, across: float) -> Point:
        return (cx + ux * along - uy * across, cy + uy * along + ux * across)

    return ((lx, ly), (rx, ry), at(*_NOSE), at(*_MOUTH_LEFT), at(*_MOUTH_RIGHT))


def _similarity(source: Sequence[Point], target: Sequence[Point]) -> npt.NDArray[np.float64]:
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
    """The part of a face a swap replaces: brows to chin, cheek to cheek, turned with the eyes."""

    centre: Point
    axes: tuple[float, float]
    angle: float
    eye_distance: float

    @classmethod
    def of(cls, face: Face) -> _Oval:
        (lx, ly), (rx, ry) = face.keypoints[0], face.keypoints[1]
        distance = max(1.0, math.hypot(rx - lx, ry - ly))
        ux, uy = (rx - lx) / distance, (ry - ly) / distance
        cx, cy = (lx + rx) / 2, (ly + ry) / 2
        drop = 0.5 * distance
        return cls(
            (cx - uy * drop, cy + ux * drop),
            (0.95 * distance, 1.25 * distance),
            math.degrees(math.atan2(uy, ux)),
            distance,
        )

    def bounds(self, width: int, height: int) -> Box:
        reach = max(self.axes) * 1.25
        x, y = self.centre
        return _clip(
            (int(x - reach), int(y - reach), math.ceil(x + reach), math.ceil(y + reach)),
            width,
            height,
        )


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
            face_image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        ),
        dtype=np.uint8,
    )
    inside = cv2.warpAffine(
        np.full(face_image.shape[:2], 255, np.uint8), matrix, size, flags=cv2.INTER_NEAREST
    )
    oval_mask = np.zeros(size[::-1], np.uint8)
    centre = (round(oval.centre[0] - left), round(oval.centre[1] - top))
    axes = (round(oval.axes[0]), round(oval.axes[1]))
    cv2.ellipse(oval_mask, centre, axes, oval.angle, 0, 360, 255, thickness=-1)
    mask = np.asarray(cv2.bitwise_and(oval_mask, inside), dtype=np.uint8)
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
