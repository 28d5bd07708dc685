"""The one private cattrs converter: every naming rule and quirk of the provider's page.

Quirks accepted (NOTES.md, "Inconsistencies"), the documented form always sent:
numbers as strings (ids, sizes, ``is_hd``), ``key`` beside ``main_key``, ``kps`` keyed "1".."5",
keys typed int that are strings. Unknown fields are ignored. Fields marked ``local`` in the
models are the client's own and never cross the wire.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ._errors import ProtocolError
from ._models import (
    DetectedFace,
    FaceSwapRequest,
    Hd,
    ImageSwapResult,
    Keypoints,
    Point,
    TaskResult,
    VideoSwapResult,
)
from ._operations import TaskKind

if TYPE_CHECKING:
    import cattrs

__all__ = ["structure", "structure_result", "unstructure"]

T = TypeVar("T")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    if isinstance(value, str) and "." in value:
        return int(float(value))
    return int(value)


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, (dict, list)):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return str(value)


_KEYPOINT_FIELDS = [field.name for field in attrs.fields(Keypoints)]


def _structure_keypoints(value: Any, _: type) -> Keypoints:
    if isinstance(value, Mapping):
        # The wire keys them "1".."5"; our own unstructured form uses names.
        points = [value.get(str(n), value.get(name)) for n, name in enumerate(_KEYPOINT_FIELDS, 1)]
    else:
        points = list(value)
    if len(points) != len(_KEYPOINT_FIELDS) or any(p is None for p in points):
        raise ValueError("kps must hold the five keypoints 1..5")
    return Keypoints(*(_converter().structure(p, Point) for p in points))


def _unstructure_keypoints(kps: Keypoints) -> dict[str, Any]:
    return {str(n): _converter().unstructure(point) for n, point in enumerate(kps, 1)}


@functools.cache
def _converter() -> cattrs.Converter:
    """The converter, built on first use: importing cattrs and generating hooks costs time
    that ``import miocreate_async`` need not pay."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

    converter = cattrs.Converter(prefer_attrib_converters=True)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, lambda value, _: float(value))
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(Hd, lambda value, _: Hd(int(value)))
    converter.register_unstructure_hook(Hd, int)
    converter.register_structure_hook(Keypoints, _structure_keypoints)
    converter.register_unstructure_hook(Keypoints, _unstructure_keypoints)

    def local_fields(cls: type) -> dict[str, Any]:
        # Fields marked ``local`` are the client's own: never read from or sent on the wire.
        return {
            field.name: override(omit=True)
            for field in attrs.fields(cls)
            if field.metadata.get("local")
        }

    converter.register_structure_hook_factory(
        attrs.has, lambda cls: make_dict_structure_fn(cls, converter, **local_fields(cls))
    )
    converter.register_unstructure_hook_factory(
        attrs.has, lambda cls: make_dict_unstructure_fn(cls, converter, **local_fields(cls))
    )
    structure_face_swap = make_dict_structure_fn(FaceSwapRequest, converter)

    def structure_face_swap_request(value: Any, cls: type) -> FaceSwapRequest:
        # The page's examples send ``key`` where its table says ``main_key``.
        if isinstance(value, Mapping) and "main_key" not in value and "key" in value:
            value = {**value, "main_key": value["key"]}
        return structure_face_swap(value, cls)

    converter.register_structure_hook(FaceSwapRequest, structure_face_swap_request)
    return converter


def structure(data: Any, cls: type[T], *, what: str | None = None) -> T:
    """Structure wire data into ``cls``; a mismatch is one ProtocolError naming the bad fields."""
    try:
        return _converter().structure(data, cls)
    except Exception as exc:
        raise _protocol_error(exc, what or str(getattr(cls, "__name__", cls))) from exc


def unstructure(obj: Any) -> Any:
    """The documented wire form of a model (``is_hd`` as 1 or 2, ids as ints)."""
    return _converter().unstructure(obj)


_RESULT_TYPE: dict[TaskKind, Any] = {
    TaskKind.IMAGE_SWAP: ImageSwapResult,
    TaskKind.MULTI_IMAGE_SWAP: ImageSwapResult,
    TaskKind.VIDEO_SWAP: VideoSwapResult,
    TaskKind.MULTI_VIDEO_SWAP: VideoSwapResult,
    TaskKind.FACE_DETECTION: list[DetectedFace],
}
_VIDEO_ONLY_FIELDS = frozenset({"duration", "merge_width", "cover_key", "cover_url"})


def result_type_of(data: Any) -> Any:
    """The result type a task detail's ``additional_data`` has, judged by its shape."""
    if isinstance(data, list):
        return list[DetectedFace]
    if isinstance(data, Mapping):
        return VideoSwapResult if _VIDEO_ONLY_FIELDS & data.keys() else ImageSwapResult
    raise ProtocolError(
        f"additional_data has an unknown shape ({type(data).__name__})", operation="task_detail"
    )


def structure_result(data: Any, kind: TaskKind | None) -> TaskResult:
    """A succeeded task's typed result: by its kind where known, else by the data's shape."""
    if not data:
        raise ProtocolError(
            "the task succeeded but its additional_data is empty", operation="task_detail"
        )
    cls = _RESULT_TYPE[kind] if kind is not None else result_type_of(data)
    result: TaskResult = structure(data, cls, what="additional_data")
    return result


def _protocol_error(exc: BaseException, what: str) -> ProtocolError:
    if isinstance(exc, ProtocolError):
        return exc
    import cattrs

    if isinstance(exc, (cattrs.BaseValidationError, cattrs.errors.ForbiddenExtraKeysError)):
        details = "; ".join(cattrs.transform_error(exc, path=what))
    else:
        details = f"{what}: {exc}"
    return ProtocolError(f"unexpected reply shape: {details}")
