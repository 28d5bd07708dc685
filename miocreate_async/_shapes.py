"""The shape of a JSON reply (its field names and value types), the documented shapes of the
free operations, and how two shapes differ.

``miocreate doctor`` checks the real service's replies against the documented shapes, and
records them; the emulator's conformance check replays a recording and compares its own
replies' shapes with the service's. Values never matter, only names and types: a recording
holds no secret a shape could need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

__all__ = ["DOCUMENTED", "Shape", "differences", "shape_of"]

#: "str", "int", "float", "bool", "null", a dict of field shapes, or a one-item list.
Shape: TypeAlias = str | dict[str, "Shape"] | list["Shape"]

#: The envelope of every API reply, and the ``data`` of each free operation's success.
ENVELOPE: dict[str, Shape] = {"code": "int", "message": "str"}
DOCUMENTED: Mapping[str, dict[str, Shape]] = {
    "token": {"access_token": "str", "expires_in": "int"},
    "upload_url": {"upload_url": "str", "key": "str"},
    "access_url": {"url": "str"},
    "task_detail": {"id": "int", "message": "str", "status": "int"},
}


def shape_of(value: object) -> Shape:
    """The shape of a decoded JSON value (a list by its first item)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping):
        return {str(key): shape_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape_of(value[0])] if value else []
    return type(value).__name__


def differences(expected: Shape, actual: Shape, *, path: str = "", extra: bool = True) -> list[str]:
    """How ``actual`` differs from ``expected``, one line each (empty: the same shape).

    ``extra=False`` allows fields ``expected`` does not name (a documented subset)."""
    where = path or "the reply"
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = [
            line
            for name, shape in expected.items()
            for line in (
                differences(shape, actual[name], path=f"{path}.{name}".lstrip("."), extra=extra)
                if name in actual
                else [f"{f'{path}.{name}'.lstrip('.')}: missing"]
            )
        ]
        if extra:
            found += [
                f"{f'{path}.{name}'.lstrip('.')}: not expected"
                for name in actual
                if name not in expected
            ]
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        if not expected or not actual:
            return []
        return differences(expected[0], actual[0], path=f"{path}[0]", extra=extra)
    if _name(expected) != _name(actual):
        return [f"{where}: {_name(actual)} where {_name(expected)} was expected"]
    return []


def _name(shape: Shape) -> str:
    if isinstance(shape, dict):
        return "object"
    if isinstance(shape, list):
        return "array"
    return shape
