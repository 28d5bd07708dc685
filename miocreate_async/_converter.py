"""The one private cattrs converter: every naming rule and quirk of the provider's page.

Quirks accepted (the inconsistencies of the provider's page), the documented form always sent:
numbers as strings (ids, sizes, ``is_hd``), ``key`` beside ``main_key``, ``kps`` keyed "1".."5",
keys typed int that are strings. Unknown fields are ignored. Fields marked ``local`` in the
models are the client's own and never cross the wire.

Every reply goes through cattrs' own generated hooks, with its speed settings where they pay:
a hook for each optional scalar (cattrs' general union handling tripled a result's cost) and
scalar hooks that take a value already of the field's type at once. Detailed validation stays
on: it costs little on a good reply (about 6 % of its structuring), and names the bad field
of a bad one. A second, ``exec``-generated decoder for the hottest types was dropped (issue 22):
callgrind counted it 5-8k instructions cheaper a poll (1-1.4 % of a ``get_task`` on a task
in progress, 563k) and 26-34k a succeeded task (4-5 % of 643k), once per task; the
call-overhead benchmark's spread on a shared machine (±10 %) does not show the difference.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ._errors import ProtocolError
from ._models import (
    DetectedFace,
    Hd,
    ImageSwapResult,
    Keypoints,
    Point,
    TaskKind,
    TaskResult,
    VideoSwapResult,
)

if TYPE_CHECKING:
    import cattrs

    from ._wire import FaceSwapRequest

__all__ = ["strict_int", "structure", "structure_result", "unstructure"]

T = TypeVar("T")


def _structure_int(value: Any, _: type) -> int:
    """An integer, also as a string ("123", "123.0"); never a bool, a fraction or NaN: a wrong
    guess at an id or a status would lose or misread a paid task."""
    if value.__class__ is int:  # nearly every one: no more checks
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and "." not in value:
        return int(value.strip())  # any size: ids are not bounded by 64 bits
    number = float(value)
    if not math.isfinite(number) or not number.is_integer():
        raise ValueError(f"expected an integer, got {value!r}")
    return int(number)


def strict_int(value: Any) -> int:
    """``value`` as an integer by the converter's rule (a JSON ``true`` is no 1), else
    ``TypeError`` or ``ValueError``: for fields read outside a model (the envelope's code)."""
    return _structure_int(value, int)


def _structure_float(value: Any, _: type) -> float:
    if value.__class__ is float:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _structure_str(value: Any, _: type) -> str:
    if value.__class__ is str:
        return value
    # JSON null is no string: str(None) would turn into a token "None" sent to the API.
    if value is None or isinstance(value, (dict, list, bool)):
        raise TypeError(f"expected a string, got {value!r}")
    return str(value)


def _optional(hook: Callable[[Any, type], T]) -> Callable[[Any, type], T | None]:
    """The hook of ``X | None`` from that of ``X``."""

    def structure_optional(value: Any, cls: type) -> T | None:
        return None if value is None else hook(value, cls)

    return structure_optional


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

    from ._wire import FaceSwapRequest

    converter = cattrs.Converter(prefer_attrib_converters=True)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(str, _structure_str)
    # Optional fields by a hook of their own: cattrs' general union handling costs a result
    # twice its hooks' time (6 us against 2 us for an image result).
    for scalar, hook in ((int, _structure_int), (float, _structure_float), (str, _structure_str)):
        converter.register_structure_hook(scalar | None, _optional(hook))
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
    if isinstance(data, (dict, Mapping)):  # dict first: the ABC check costs more
        return VideoSwapResult if _VIDEO_ONLY_FIELDS & data.keys() else ImageSwapResult
    raise ProtocolError(
        f"additional_data has an unknown shape ({type(data).__name__})", operation="task_detail"
    )


def structure_result(data: Any, kind: TaskKind | None, **local: Any) -> TaskResult:
    """A succeeded task's typed result: by its kind where known, else by the data's shape.

    ``local`` sets the client's own fields (``expires_at``, ``downloader``; a face's
    ``task_id``), which never come from the wire."""
    if not data:
        raise ProtocolError(
            "the task succeeded but its additional_data is empty", operation="task_detail"
        )
    cls = _RESULT_TYPE[kind] if kind is not None else result_type_of(data)
    result: TaskResult = structure(data, cls, what="additional_data")
    if not local:
        return result
    if isinstance(result, list):
        return [attrs.evolve(item, **local) for item in result]
    # Set on the result just built, before anyone sees it, as attrs' own __init__ sets the
    # fields of a frozen class: ``attrs.evolve`` (a second __init__) cost 3 us of the 5 us a
    # succeeded task's result took to build.
    names = _LOCAL_NAMES.get(cls) or _local_names(cls)
    for alias, value in local.items():
        object.__setattr__(result, names[alias], value)
    return result


#: Each result class's own fields, by the name they are passed as (``downloader``).
_LOCAL_NAMES: dict[type, dict[str, str]] = {}


def _local_names(cls: type) -> dict[str, str]:
    names = {f.alias: f.name for f in attrs.fields(cls) if f.metadata.get("local")}
    _LOCAL_NAMES[cls] = names
    return names


def _protocol_error(exc: BaseException, what: str) -> ProtocolError:
    if isinstance(exc, ProtocolError):
        return exc
    import cattrs

    if isinstance(exc, (cattrs.BaseValidationError, cattrs.errors.ForbiddenExtraKeysError)):
        details = "; ".join(cattrs.transform_error(exc, path=what))
    else:
        details = f"{what}: {exc}"
    return ProtocolError(f"unexpected reply shape: {details}")
