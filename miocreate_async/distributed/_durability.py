"""The Redis must keep a batch's records: every write on disk before it is answered (the intent
to create a paid task is durable before the request goes), and nothing evicted.

Checked at start by the driver and by every worker: ``appendonly yes``, ``appendfsync always``
(``everysec`` only by the explicit choice ``durability="everysec"``: up to a second of changes
lost in a crash of the machine, so a task may be created again), ``maxmemory-policy
noeviction``. ``durability="unchecked"`` skips the check (a managed Redis that does not allow
``CONFIG GET`` and promises as much).
"""

from __future__ import annotations

from typing import Literal, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .._errors import InvalidInputError
from ._errors import UnsafeRedisError

__all__ = ["DURABILITY", "Durability", "check_durability"]

Durability = Literal["always", "everysec", "unchecked"]
DURABILITY: tuple[Durability, ...] = ("always", "everysec", "unchecked")

_ADVICE = (
    "run redis-server with --appendonly yes --appendfsync always --maxmemory-policy noeviction "
    '(or pass durability="unchecked" / --durability unchecked to accept the risk)'
)


async def check_durability(redis: Redis, durability: Durability) -> None:
    """``UnsafeRedisError`` naming each setting that could lose the batch's records."""
    if durability not in DURABILITY:
        raise InvalidInputError(f"durability is one of {', '.join(DURABILITY)}, not {durability!r}")
    if durability == "unchecked":
        return
    try:
        found: dict[str, str] = {}
        for name in ("appendonly", "appendfsync", "maxmemory-policy"):
            found.update(cast("dict[str, str]", await redis.config_get(name)))
    except ResponseError as error:  # a managed Redis: CONFIG renamed or not permitted
        raise UnsafeRedisError(
            f"cannot check that this Redis keeps the batch's records: CONFIG GET is not "
            f"permitted ({error}); if your provider guarantees an append-only file fsynced on "
            'every write and no eviction, pass durability="unchecked" (--durability unchecked)',
            ["CONFIG"],
        ) from error
    unsafe = []
    if found.get("appendonly") != "yes":
        unsafe.append(f"appendonly {found.get('appendonly')} (a restart loses every record)")
    fsync = found.get("appendfsync")
    if fsync != "always" and not (fsync == "everysec" and durability == "everysec"):
        unsafe.append(
            f"appendfsync {fsync} (a crash loses the last writes: a paid task may be created "
            'again; everysec only with durability="everysec")'
        )
    policy = found.get("maxmemory-policy")
    if policy != "noeviction":
        unsafe.append(f"maxmemory-policy {policy} (records may be evicted)")
    if unsafe:
        raise UnsafeRedisError(
            "this Redis could lose the batch's records: " + "; ".join(unsafe) + ". " + _ADVICE,
            [item.split(" (")[0] for item in unsafe],
        )
