"""The one private cattrs converter: every naming rule and quirk of the provider's page.

Quirks accepted (the inconsistencies of the provider's page), the documented form always sent:
numbers as strings (ids, sizes, ``is_hd``), ``key`` beside ``main_key``, ``kps`` keyed "1".."5",
keys typed int that are strings. Unknown fields are ignored. Fields marked ``local`` in the
models are the client's own and never cross the wire.
"""

from __future__ import annotations

import functools
import math
import typing
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
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _structure_str(value: Any, _: type) -> str:
    # JSON null is no string: str(None) would turn into a token "None" sent to the API.
    if value is None or isinstance(value, (dict, list, bool)):
        raise TypeError(f"expected a string, got {value!r}")
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

    from ._wire import FaceSwapRequest

    converter = cattrs.Converter(prefer_attrib_converters=True)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
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
    fast = (_FAST or _build_fast()).get(cls)
    if fast is not None:
        try:
            built: T = fast(data, {})
            return built
        except Exception:  # cattrs says precisely what is wrong, below
            pass
    return _structure_by_cattrs(data, cls, what)


def _structure_by_cattrs(data: Any, cls: type[T], what: str | None) -> T:
    try:
        return _converter().structure(data, cls)
    except Exception as exc:
        raise _protocol_error(exc, what or str(getattr(cls, "__name__", cls))) from exc


def unstructure(obj: Any) -> Any:
    """The documented wire form of a model (``is_hd`` as 1 or 2, ids as ints)."""
    fast = (_FAST_OUT or _build_fast_out()).get(obj.__class__)
    if fast is not None:
        return fast(obj)
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
    ``task_id``) as the result is built, so no copy is made to bind it."""
    if not data:
        raise ProtocolError(
            "the task succeeded but its additional_data is empty", operation="task_detail"
        )
    cls = _RESULT_TYPE[kind] if kind is not None else result_type_of(data)
    fast = (_FAST or _build_fast()).get(cls)
    if fast is not None:
        try:
            built: TaskResult = fast(data, local)
            return built
        except Exception:  # cattrs says precisely what is wrong, below
            pass
    result: TaskResult = _structure_by_cattrs(data, cls, "additional_data")
    if not local:
        return result
    if isinstance(result, list):
        return [attrs.evolve(item, **local) for item in result]
    return attrs.evolve(result, **local)


# --- the fast path: a structure hook generated once per hot type -------------------------------
# cattrs' generated hooks dispatch through the converter for every field at each call (some
# 5 us for a result); these call the field's coercion directly, with the same rules. Any
# mismatch raises, and the caller asks cattrs instead: cattrs alone decides what is an error,
# and says where (tests/unit compares the two on good and bad replies).

Coerce = Callable[[Any], Any]


def _coerce_int(value: Any) -> int:
    return value if type(value) is int else _structure_int(value, int)


def _coerce_float(value: Any) -> float:
    return value if type(value) is float else _structure_float(value, float)


def _coerce_str(value: Any) -> str:
    return value if type(value) is str else _structure_str(value, str)


def _optional(coerce: Coerce) -> Coerce:
    def optional(value: Any) -> Any:
        return None if value is None else coerce(value)

    return optional


def _identity(value: Any) -> Any:
    return value


_COERCE: dict[Any, Coerce] = {
    int: _coerce_int,
    str: _coerce_str,
    float: _coerce_float,  # never the builtin float(): it takes a JSON true as 1.0
    Any: _identity,
}


def _coercer(annotation: Any) -> Coerce | None:
    if annotation in _COERCE:
        return _COERCE[annotation]
    args = typing.get_args(annotation)
    if len(args) == 2 and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        coerce = _COERCE.get(inner)
        return None if coerce is None else _optional(coerce)
    return None


def _inline(annotation: Any, value: str, coerce: str) -> str:
    """The source that coerces ``value``: a value already of the field's type (nearly every
    one) is taken as it is, without a call; any other goes to ``coerce``."""
    if annotation is Any:
        return value
    args = typing.get_args(annotation)
    optional = len(args) == 2 and type(None) in args
    inner = next(arg for arg in args if arg is not type(None)) if optional else annotation
    if inner not in (int, str):
        return f"{coerce}({value})"
    test = f"(_v := {value}).__class__ is {inner.__name__}"
    if optional:
        test = f"(_v := {value}) is None or _v.__class__ is {inner.__name__}"
    return f"(_v if {test} else {coerce}(_v))"


def _fast_structure(cls: Any) -> Callable[[Any, dict[str, Any]], Any]:
    """A structure function for a flat attrs class of ints, floats and strings, generated
    once (as attrs and cattrs generate theirs): no dispatch, and the wire fields passed by
    position (half the cost of keywords) while they come before the client's own."""
    namespace: dict[str, Any] = {"cls": cls}
    arguments = []
    by_position = True
    for index, field in enumerate(attrs.fields(cls)):
        if field.metadata.get("local"):
            by_position = False
            continue
        coerce = _coercer(field.type)
        if coerce is None or not field.init:
            raise TypeError(f"{cls.__name__}.{field.name} is not flat")
        if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            raise TypeError(f"{cls.__name__}.{field.name} has a factory default")
        namespace[f"c{index}"] = coerce
        value = _inline(field.type, f"data[{field.name!r}]", f"c{index}")
        if field.default is not attrs.NOTHING:
            namespace[f"d{index}"] = field.default
            value += f" if {field.name!r} in data else d{index}"
        arguments.append(value if by_position else f"{field.alias}={value}")
    source = f"def build(data, local):\n    return cls({', '.join(arguments)}, **local)\n"
    exec(compile(source, f"<fast structure {cls.__name__}>", "exec"), namespace)
    build: Callable[[Any, dict[str, Any]], Any] = namespace["build"]
    return build


#: The types read on every poll, and the results: hot enough for a hook of their own (made on
#: first use, not at import).
_FAST: dict[Any, Callable[[Any, dict[str, Any]], Any]] = {}


def _build_fast() -> dict[Any, Callable[[Any, dict[str, Any]], Any]]:
    from ._wire import TaskDetail

    for cls in (TaskDetail, ImageSwapResult, VideoSwapResult):
        _FAST[cls] = _fast_structure(cls)
    return _FAST


def _fast_unstructure(cls: Any) -> Callable[[Any], dict[str, Any]]:
    """The wire form of a flat attrs class of ints and strings, which cattrs sends as they
    are: one dict display, generated once."""
    items = []
    for field in attrs.fields(cls):
        if field.metadata.get("local") or field.type not in (int, str):
            raise TypeError(f"{cls.__name__}.{field.name} is not a plain int or str")
        items.append(f"{field.name!r}: obj.{field.name}")
    namespace: dict[str, Any] = {}
    source = f"def unstructure(obj):\n    return {{{', '.join(items)}}}\n"
    exec(compile(source, f"<fast unstructure {cls.__name__}>", "exec"), namespace)
    unstructure: Callable[[Any], dict[str, Any]] = namespace["unstructure"]
    return unstructure


#: The request sent on every poll: its body is made without the converter's dispatch.
_FAST_OUT: dict[Any, Callable[[Any], dict[str, Any]]] = {}


def _build_fast_out() -> dict[Any, Callable[[Any], dict[str, Any]]]:
    from ._wire import TaskDetailRequest

    _FAST_OUT[TaskDetailRequest] = _fast_unstructure(TaskDetailRequest)
    return _FAST_OUT


def _protocol_error(exc: BaseException, what: str) -> ProtocolError:
    if isinstance(exc, ProtocolError):
        return exc
    import cattrs

    if isinstance(exc, (cattrs.BaseValidationError, cattrs.errors.ForbiddenExtraKeysError)):
        details = "; ".join(cattrs.transform_error(exc, path=what))
    else:
        details = f"{what}: {exc}"
    return ProtocolError(f"unexpected reply shape: {details}")
