"""The emulator's settings: one frozen object, built from keyword arguments or the command line."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._formats import MAX_UPLOAD_BYTES
from .._operations import DEFAULT_PATHS, Operation, TaskKind

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "EmulatorSettings",
    "Latency",
    "LatencyInput",
    "kinds_of",
]

DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"

Range = tuple[float, float]
RangeInput = float | int | str | tuple[float, float]

#: The command line's names for groups of task kinds.
_GROUPS: dict[str, tuple[TaskKind, ...]] = {
    "image": (TaskKind.IMAGE_SWAP, TaskKind.MULTI_IMAGE_SWAP),
    "video": (TaskKind.VIDEO_SWAP, TaskKind.MULTI_VIDEO_SWAP),
    "faces": (TaskKind.FACE_DETECTION,),
}
# Roughly what the service takes, so a demo feels real; tests pass their own.
_DEFAULT_LATENCY: dict[str, Range] = {"image": (1.0, 3.0), "video": (4.0, 8.0), "faces": (0.5, 1.5)}


def kinds_of(name: str) -> tuple[TaskKind, ...]:
    """The task kinds a name stands for: a group (image, video, faces), a kind, or all."""
    if name in ("default", "*", "all"):
        return tuple(TaskKind)
    if name in _GROUPS:
        return _GROUPS[name]
    try:
        return (TaskKind(name),)
    except ValueError:
        known = ", ".join([*_GROUPS, *(kind.value for kind in TaskKind), "default"])
        raise ValueError(f"unknown task kind {name!r}; known: {known}") from None


def _range(value: RangeInput) -> Range:
    if isinstance(value, tuple):
        low, high = float(value[0]), float(value[1])
    elif isinstance(value, str):
        low_text, _, high_text = value.strip().partition("-")
        low = float(low_text)
        high = float(high_text) if high_text else low
    else:
        low = high = float(value)
    if not 0 <= low <= high:
        raise ValueError(f"latency must be 0 <= MIN <= MAX, got {value!r}")
    return low, high


@attrs.frozen
class Latency:
    """How long tasks take: a (min, max) range per kind, drawn once per task."""

    by_kind: Mapping[TaskKind, Range]

    @classmethod
    def parse(cls, value: LatencyInput | None) -> Latency:
        """``0.5``, ``"1-2"``, ``(1, 2)``, ``"image=2-4,video=15-30"`` or a mapping of those."""
        if isinstance(value, Latency):
            return value
        by_kind = {
            kind: _DEFAULT_LATENCY[group] for group, kinds in _GROUPS.items() for kind in kinds
        }
        if value is None:
            return cls(by_kind)
        if isinstance(value, str) and "=" in value:
            value = dict(part.split("=", 1) for part in value.split(",") if part.strip())
        if isinstance(value, Mapping):
            # Broad names first, so "default=1,image=2" means what it says in any order.
            entries = sorted(value.items(), key=lambda item: -len(kinds_of(item[0].strip())))
            for name, spec in entries:
                for kind in kinds_of(name.strip()):
                    by_kind[kind] = _range(spec)
            return cls(by_kind)
        return cls(dict.fromkeys(TaskKind, _range(value)))

    def draw(self, kind: TaskKind, rng: random.Random) -> float:
        low, high = self.by_kind[kind]
        return low if low == high else rng.uniform(low, high)


#: What ``latency=`` accepts.
LatencyInput = RangeInput | Mapping[str, RangeInput] | Latency


def _latency(value: LatencyInput | None) -> Latency:
    return Latency.parse(value)


def _credit_cost(
    value: Mapping[str, int] | Mapping[TaskKind, int] | None,
) -> Mapping[TaskKind, int]:
    cost = dict.fromkeys(TaskKind, 1)
    for name, amount in (value or {}).items():
        for kind in (name,) if isinstance(name, TaskKind) else kinds_of(str(name)):
            cost[kind] = int(amount)
    return cost


def _paths(value: Mapping[Operation | str, str] | None) -> Mapping[Operation, str]:
    merged = dict(DEFAULT_PATHS)
    for name, path in (value or {}).items():
        merged[Operation(name)] = "/" + path.lstrip("/")
    return merged


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _optional_path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


@attrs.frozen(kw_only=True)
class EmulatorSettings:
    """Everything that shapes the emulator's behaviour; every expiry runs on its own clock."""

    #: Look at the pixels: real detection, 602/603 from content, real swaps and videos.
    vision: bool = False
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = attrs.field(default=DEFAULT_CLIENT_SECRET, repr=False)
    latency: Latency = attrs.field(default=None, converter=_latency)
    #: Seeds fault and latency draws; None draws a seed.
    seed: int | None = None
    token_ttl: float = 3600.0
    fail_rate: float = attrs.field(default=0.0, validator=_share)
    cut_rate: float = attrs.field(default=0.0, validator=_share)
    slow_rate: float = attrs.field(default=0.0, validator=_share)
    #: How long a "slow" request is held: long enough to hit a client's timeout.
    slow_delay: float = 30.0
    #: Share of cut task creations that are cut after the task was made.
    cut_after_share: float = attrs.field(default=0.5, validator=_share)
    #: Whether random faults hit presigned storage too (scenarios always can).
    storage_faults: bool = False
    data_dir: Path | None = attrs.field(default=None, converter=_optional_path)
    credits: int = 1_000_000
    credit_cost: Mapping[TaskKind, int] = attrs.field(default=None, converter=_credit_cost)
    #: API requests per second before code 802; None: no quota.
    request_quota: float | None = None
    upload_url_ttl: float = 1800.0
    access_url_ttl: float = 3600.0
    result_url_ttl: float = 7 * 24 * 3600.0
    max_object_bytes: int = MAX_UPLOAD_BYTES
    paths: Mapping[Operation, str] = attrs.field(default=None, converter=_paths)
    #: The ledger keeps this many recent requests (memory stays flat under load).
    max_logged_requests: int = 50_000
    #: Seconds the server waits for open requests when it stops.
    shutdown_timeout: float = 1.0

    def __attrs_post_init__(self) -> None:
        if self.fail_rate + self.cut_rate + self.slow_rate > 1.0:
            raise ValueError("fail_rate + cut_rate + slow_rate must not exceed 1")

    @classmethod
    def build(cls, **options: Any) -> EmulatorSettings:
        return cls(**{name: value for name, value in options.items() if value is not None})
