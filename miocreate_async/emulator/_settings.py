"""The emulator's settings: one frozen object, built from keyword arguments or the command line."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from pathlib import Path

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


def _positive(_: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


def _pairs(text: str) -> dict[str, str]:
    """``"image=2,video=5"`` as a mapping; ValueError names a part without ``=``."""
    pairs = {}
    for part in text.split(","):
        name, equals, value = part.partition("=")
        if not equals:
            raise ValueError(f"expected NAME=VALUE, got {part!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def _cost_flag(text: str) -> dict[str, int]:
    return {name: int(value) for name, value in _pairs(text).items()}


def _flag(
    help: str, *, parse: Callable[[str], object] | None = None, metavar: str | None = None
) -> dict[str, object]:
    """A field's metadata making it a command-line flag (``--name-with-dashes``) with its help:
    ``parse`` reads its value (a bool field is a switch)."""
    return {"help": help, "parse": parse, "metavar": metavar}


@attrs.frozen(kw_only=True)
class EmulatorSettings:
    """Everything that shapes the emulator's behaviour; every expiry runs on its own clock.

    The one definition of the settings: ``Emulator(**options)``, the pytest marker and the
    command line (every field with a help text is a flag) all read these fields.
    """

    vision: bool = attrs.field(
        default=False,
        metadata=_flag(
            "look at the pixels: real face detection, 602/603 from content, real swaps and "
            "playable videos (needs the vision packages, in the emulator extra)"
        ),
    )
    client_id: str = attrs.field(
        default=DEFAULT_CLIENT_ID, metadata=_flag("the client_id the token exchange accepts")
    )
    client_secret: str = attrs.field(
        default=DEFAULT_CLIENT_SECRET,
        repr=False,
        metadata=_flag("the client_secret the token exchange accepts"),
    )
    #: The scheme of the Authorization header ("Bearer <token>"); "" accepts a bare token.
    auth_scheme: str = attrs.field(
        default="Bearer", metadata=_flag('the Authorization scheme; "" for a bare token')
    )
    latency: Latency = attrs.field(
        default=None,
        converter=_latency,
        metadata=_flag(
            "seconds a task takes: 0.5, a range 1-3, or per kind image=2-4,video=15-30,faces=1 "
            "(default image=1-3,video=4-8,faces=0.5-1.5)",
            parse=str,
            metavar="SECONDS",
        ),
    )
    #: Seeds fault and latency draws; None draws a seed.
    seed: int | None = attrs.field(
        default=None, metadata=_flag("seed of faults and latencies (reproducible runs)", parse=int)
    )
    token_ttl: float = attrs.field(
        default=3600.0, metadata=_flag("token lifetime, seconds", parse=float)
    )
    fail_rate: float = attrs.field(
        default=0.0,
        validator=_share,
        metadata=_flag("share of API requests answered code 500 or a 502 page", parse=float),
    )
    cut_rate: float = attrs.field(
        default=0.0,
        validator=_share,
        metadata=_flag("share of API requests cut without a reply", parse=float),
    )
    slow_rate: float = attrs.field(
        default=0.0,
        validator=_share,
        metadata=_flag("share of API requests answered after --slow-delay", parse=float),
    )
    #: How long a "slow" request is held: long enough to hit a client's timeout.
    slow_delay: float = attrs.field(
        default=30.0, metadata=_flag("seconds a slow reply is held", parse=float)
    )
    #: Share of cut task creations that are cut after the task was made.
    cut_after_share: float = attrs.field(
        default=0.5,
        validator=_share,
        metadata=_flag("share of cut task creations cut after the task was made", parse=float),
    )
    #: Whether random faults hit presigned storage too (scenarios always can).
    storage_faults: bool = attrs.field(
        default=False, metadata=_flag("random faults hit presigned storage too")
    )
    data_dir: Path | None = attrs.field(
        default=None,
        converter=_optional_path,
        metadata=_flag(
            "where stored objects live (a temporary folder by default); files the emulator did not "
            "write there are never deleted",
            parse=str,
            metavar="DIR",
        ),
    )
    credits: int = attrs.field(
        default=1_000_000,
        metadata=_flag("credits to spend; task creation beyond them is 801", parse=int),
    )
    credit_cost: Mapping[TaskKind, int] = attrs.field(
        default=None,
        converter=_credit_cost,
        metadata=_flag(
            "credits a task costs, per kind: image=1,video=5 (default 1 each)",
            parse=_cost_flag,
            metavar="KIND=N,...",
        ),
    )
    #: API requests per second before code 802; None: no quota.
    request_quota: float | None = attrs.field(
        default=None,
        validator=_positive,
        metadata=_flag("API requests a second before code 802", parse=float),
    )
    #: Bytes a second each connection may upload to presigned storage; None: no cap.
    bandwidth_per_connection: float | None = attrs.field(
        default=None,
        validator=_positive,
        metadata=_flag(
            "cap each connection's upload (PUT) bytes a second, so transfer benchmarks do not "
            "depend on this machine's cores",
            parse=int,
            metavar="BYTES",
        ),
    )
    #: Log one line per API and storage request (redacted) to the "miocreate_async.emulator"
    #: logger; the command line prints them on stderr.
    access_log: bool = attrs.field(
        default=False, metadata=_flag("print one line per request on stderr (signatures redacted)")
    )
    upload_url_ttl: float = attrs.field(
        default=1800.0, metadata=_flag("upload URL lifetime, seconds", parse=float)
    )
    access_url_ttl: float = attrs.field(
        default=3600.0, metadata=_flag("access URL lifetime, seconds", parse=float)
    )
    result_url_ttl: float = attrs.field(
        default=7 * 24 * 3600.0, metadata=_flag("result URL lifetime, seconds", parse=float)
    )
    max_object_bytes: int = attrs.field(
        default=MAX_UPLOAD_BYTES,
        metadata=_flag("largest object a task accepts (code 704 beyond)", parse=int),
    )
    paths: Mapping[Operation, str] = attrs.field(default=None, converter=_paths)
    #: The ledger keeps this many recent requests (memory stays flat under load).
    max_logged_requests: int = attrs.field(
        default=50_000, metadata=_flag("requests the ledger keeps", parse=int)
    )
    #: Seconds the server waits for open requests when it stops.
    shutdown_timeout: float = 1.0

    def __attrs_post_init__(self) -> None:
        if self.fail_rate + self.cut_rate + self.slow_rate > 1.0:
            raise ValueError("fail_rate + cut_rate + slow_rate must not exceed 1")
