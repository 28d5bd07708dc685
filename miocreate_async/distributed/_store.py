"""The shared journal of one batch, in Redis: one hash per job, changed only by the scripts.

Keys of batch ``B`` share the hash tag ``{B}`` (one slot in a Redis Cluster, so each script's
keys live together)::

    miocreate:{B}:meta          base URL, account fingerprint, versions, options
    miocreate:{B}:job:<id>      one job: state, epoch, owner, lease, spec, task_id, result, error
    miocreate:{B}:jobs          every job id, in submission order (zset)
    miocreate:{B}:counts        jobs by state
    miocreate:{B}:leases        owned, unfinished jobs by lease end (what the reapers scan)
    miocreate:{B}:outcomes      a stream: one entry per finished job, appended when it finished
    miocreate:{B}:reader        where the driver stopped reading the outcomes
    miocreate:{B}:stop          set by the first 801: no worker submits any more
    miocreate:{B}:created       tasks this batch may have created (the max_tasks budget)
    miocreate:batches           every batch's name (the reapers' list)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, cast

import attrs
from redis.asyncio import Redis

from .._errors import ConfigurationError, SubmissionUncertainError
from .._version import __version__
from . import _scripts
from ._codec import encode_error

__all__ = ["BATCHES", "FINAL_STATES", "STATES", "Claim", "SharedJournal", "account_fingerprint"]

BATCHES = "miocreate:batches"
SCHEMA = "1"
STATES = (
    "pending",
    "submitting",
    "submitted",
    "succeeded",
    "failed",
    "uncertain",
    "expired",
)
FINAL_STATES = frozenset({"succeeded", "failed", "uncertain", "expired"})


def account_fingerprint(client_id: str | None) -> str:
    """Which account a batch belongs to, without the client id itself."""
    if not client_id:
        return ""
    return hashlib.sha256(client_id.encode()).hexdigest()[:16]


@attrs.frozen
class Claim:
    """What claiming a job gave: ``claimed`` (with the epoch to present), ``busy`` (a live
    worker owns it), ``final``, ``uncertain`` (its owner died while submitting) or ``missing``."""

    outcome: str
    epoch: int = 0
    state: str = ""
    task_id: int | None = None


_UNCERTAIN = encode_error(
    SubmissionUncertainError(
        "the worker that was creating this task stopped before the reply was recorded: a task "
        "may exist and may have been paid for; not re-sent automatically",
        operation="distributed",
    )
)


class SharedJournal:
    """The records of one batch. Every change goes through one script (atomic in Redis)."""

    def __init__(self, redis: Redis, batch: str) -> None:
        if not batch or any(c in batch for c in "{}: \n"):
            raise ConfigurationError(f"a batch name needs no spaces, colons or braces: {batch!r}")
        self.redis = redis
        self.batch = batch
        prefix = f"miocreate:{{{batch}}}:"
        self.prefix = prefix
        self.meta_key = prefix + "meta"
        self.jobs_key = prefix + "jobs"
        self.counts_key = prefix + "counts"
        self.leases_key = prefix + "leases"
        self.outcomes_key = prefix + "outcomes"
        self.reader_key = prefix + "reader"
        self.stop_key = prefix + "stop"
        self.created_key = prefix + "created"
        self._add = redis.register_script(_scripts.ADD)
        self._claim = redis.register_script(_scripts.CLAIM)
        self._renew = redis.register_script(_scripts.RENEW)
        self._release = redis.register_script(_scripts.RELEASE)
        self._move = redis.register_script(_scripts.MOVE)
        self._reap = redis.register_script(_scripts.REAP)

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    # --- the batch ----------------------------------------------------------------------------

    async def open(self, meta: Mapping[str, str]) -> dict[str, str]:
        """Record the batch's meta on first use; refuse another host or account later."""
        fields = {"schema": SCHEMA, "version": __version__, **meta}
        async with self.redis.pipeline(transaction=True) as pipe:
            for name, value in fields.items():
                pipe.hsetnx(self.meta_key, name, value)
            pipe.sadd(BATCHES, self.batch)
            pipe.hgetall(self.meta_key)
            stored = cast(dict[str, str], (await pipe.execute())[-1])
        check_meta(stored, meta, self.batch)
        return stored

    async def meta(self) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(self.meta_key))

    async def add(self, job_id: str, spec: Mapping[str, Any]) -> str | None:
        """Add a pending job; None if it is new, else the state it already has."""
        state: str | None = await self._add(
            keys=[self.job_key(job_id), self.counts_key, self.jobs_key],
            args=[job_id, json.dumps(spec)],
        )
        return state

    async def counts(self) -> dict[str, int]:
        raw = cast(dict[str, str], await self.redis.hgetall(self.counts_key))
        counts = dict.fromkeys(STATES, 0)
        counts.update({state: int(n) for state, n in raw.items()})
        return counts

    async def total(self) -> int:
        return int(await self.redis.zcard(self.jobs_key))

    async def record(self, job_id: str) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(self.job_key(job_id)))

    async def stopped(self) -> str | None:
        return cast("str | None", await self.redis.get(self.stop_key))

    # --- one job's life -----------------------------------------------------------------------

    def _job_keys(self, job_id: str) -> list[str]:
        return [self.job_key(job_id), self.leases_key, self.counts_key, self.outcomes_key]

    async def claim(self, job_id: str, owner: str, lease: float) -> Claim:
        reply: list[str] = await self._claim(
            keys=self._job_keys(job_id),
            args=[job_id, owner, int(lease * 1000), _UNCERTAIN],
        )
        if reply[0] != "claimed":
            return Claim(reply[0])
        task_id = int(reply[3]) if reply[3] else None
        return Claim("claimed", int(reply[1]), reply[2], task_id)

    async def renew(self, job_id: str, epoch: int, lease: float) -> bool:
        renewed: int = await self._renew(
            keys=[self.job_key(job_id), self.leases_key],
            args=[job_id, epoch, int(lease * 1000)],
        )
        return bool(renewed)

    async def release(self, job_id: str, epoch: int) -> bool:
        released: int = await self._release(
            keys=[self.job_key(job_id), self.leases_key], args=[job_id, epoch]
        )
        return bool(released)

    async def move(
        self,
        job_id: str,
        epoch: int,
        expected: tuple[str, ...],
        to: str,
        *,
        lease: float,
        max_tasks: int = 0,
        stop: str = "",
        **fields: str | int,
    ) -> str:
        """One state change, checked against the expected state and the owner's epoch."""
        pairs: list[str | int] = []  # field, value, field, value...
        for name, value in fields.items():
            pairs += [name, value]
        reply: str = await self._move(
            keys=[*self._job_keys(job_id), self.stop_key, self.created_key],
            args=[
                job_id,
                epoch,
                ",".join(expected),
                to,
                int(lease * 1000),
                max_tasks,
                stop,
                *pairs,
            ],
        )
        return reply

    async def reap(self, lease: float, limit: int = 100) -> list[str]:
        """Jobs whose owner stopped renewing: to be sent to the queue again."""
        ids: list[str] = await self._reap(keys=[self.leases_key], args=[int(lease * 1000), limit])
        return ids


def check_meta(stored: Mapping[str, str], mine: Mapping[str, str], batch: str) -> None:
    """Refuse a batch recorded for another host, account or journal schema."""
    if stored.get("schema") != SCHEMA:
        raise ConfigurationError(
            f"batch {batch!r} was written by a journal of schema {stored.get('schema')}; "
            f"this library reads schema {SCHEMA}"
        )
    for name, what in (("base_url", "host"), ("account", "account")):
        if name in mine and stored.get(name) != mine[name]:
            raise ConfigurationError(
                f"batch {batch!r} belongs to another {what} ({name} differs): refused, so its "
                "tasks are not looked for, or paid for, on the wrong account"
            )
