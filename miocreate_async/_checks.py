"""Checks of settings and arguments, made where they are given: a bad value is a typed error at
once, never a silent "no deadline" or a hang later (NaN compares false with everything)."""

from __future__ import annotations

import math
from typing import Any

from ._errors import ConfigurationError, InvalidInputError, MioCreateError

__all__ = ["at_least", "check_timeout", "finite", "is_number"]


def is_number(value: object) -> bool:
    """A real number that is not a bool (``True`` is an int to Python, not a duration to us)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(
    *,
    above: float | None = None,
    at_least: float | None = None,
    error: type[MioCreateError] = ConfigurationError,
) -> Any:
    """An attrs validator: a finite number, ``> above`` and/or ``>= at_least``."""

    def check(_: object, attribute: Any, value: object) -> None:
        ok = is_number(value) and math.isfinite(value)  # type: ignore[arg-type]
        if ok and above is not None:
            ok = value > above  # type: ignore[operator]
        if ok and at_least is not None:
            ok = value >= at_least  # type: ignore[operator]
        if not ok:
            bound = f" above {above:g}" if above is not None else ""
            bound += f" at least {at_least:g}" if at_least is not None else ""
            raise error(f"{attribute.name} must be a finite number{bound}, got {value!r}")

    return check


def at_least(minimum: int, *, error: type[MioCreateError] = ConfigurationError) -> Any:
    """An attrs validator: an int (not a bool), at least ``minimum``."""

    def check(_: object, attribute: Any, value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise error(f"{attribute.name} must be an integer of at least {minimum}, got {value!r}")

    return check


def check_timeout(value: object, what: str = "timeout") -> float:
    """A deadline in seconds: finite and positive (every wait has one)."""
    if not is_number(value) or not math.isfinite(value) or value <= 0:  # type: ignore[arg-type,operator]
        raise InvalidInputError(f"{what} must be a finite number of seconds above 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]
