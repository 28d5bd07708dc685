"""The shared journal of one batch, in Redis: the ``Journal`` interface, plus what many workers
need (claims with fencing epochs, leases, shared stops and budgets).

Keys of batch ``B`` share the hash tag ``{B}`` (one slot in a Redis Cluster, so each script's
keys live together)::

    miocreate:{B}:meta          base URL, client fingerprint, versions (``JournalMeta``), and
                                the batch's epoch marker (random, written at its creation)
    miocreate:{B}:options       the batch's settings: job deadline, max_tasks, upload reuse
    miocreate:{B}:job:<id>      one job: the ``JobRecord`` fields, plus epoch, owner, lease, spec
    miocreate:{B}:jobs          every job id by index (zset)
    miocreate:{B}:counts        jobs by state
    miocreate:{B}:leases        owned, unfinished jobs by lease end (what the reapers scan)
    miocreate:{B}:outcomes      a stream: one entry per job, appended when it finished
    miocreate:{B}:reader        where the driver stopped reading the outcomes
    miocreate:{B}:held          uncertain jobs whose outcome the driver holds back (a set)
    miocreate:{B}:stop          set by the first 801: no worker submits any more
    miocreate:{B}:created       tasks this batch may have created (the max_tasks budget)
    miocreate:batches           every batch's name (the reapers' list)

Every change is one Lua script (atomic); with ``appendfsync always`` Redis answers a script only
once its writes are on disk, so the intent ("submitting") is durable before the request goes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any, Literal, cast

import attrs
from redis.asyncio import Redis

from .._errors import ConfigurationError, SubmissionUncertainError
from .._journal import (
    TRANSITIONS,
    ErrorInfo,
    JobRecord,
    JobState,
    JournalMeta,
    JournalStateError,
    NewJob,
    Summary,
)
from . import _scripts
from ._errors import BatchLostError

__all__ = ["BATCHES", "Attached", "Claim", "RedisJournal"]

BATCHES = "miocreate:batches"

#: What a late creation reply did to its job (``RedisJournal.attach``).
Attached = Literal["attached", "recorded", "ended"]
_ATTACHED: dict[int, Attached] = {1: "attached", 2: "recorded"}


@attrs.frozen
class Claim:
    """What claiming a job gave: ``claimed`` (with the epoch to present), ``busy`` (a live
    worker owns it), ``final``, ``uncertain`` (its owner died while submitting) or ``missing``."""

    outcome: str
    epoch: int = 0
    state: JobState = JobState.PENDING
    task_id: int | None = None


_UNCERTAIN = json.dumps(
    attrs.asdict(
        ErrorInfo.of(
            SubmissionUncertainError(
                "the worker creating this task stopped before its reply was recorded: a task "
                "may exist and may have been paid for; not re-sent automatically"
            )
        )
    )
)


class RedisJournal:
    """The records of one batch in Redis, shared by its driver and every worker."""

    def __init__(self, redis: Redis, batch: str) -> None:
        if not batch or any(c in batch for c in "{}: \n"):
            raise ConfigurationError(f"a batch name needs no spaces, colons or braces: {batch!r}")
        self.redis = redis
        self.batch = batch
        prefix = f"miocreate:{{{batch}}}:"
        self.prefix: str = prefix
        self.meta_key: str = prefix + "meta"
        self.options_key: str = prefix + "options"
        self.jobs_key: str = prefix + "jobs"
        self.counts_key: str = prefix + "counts"
        self.leases_key: str = prefix + "leases"
        self.outcomes_key: str = prefix + "outcomes"
        self.reader_key: str = prefix + "reader"
        self.held_key: str = prefix + "held"
        self.stop_key: str = prefix + "stop"
        self.created_key: str = prefix + "created"
        self._add = redis.register_script(_scripts.ADD)
        self._claim = redis.register_script(_scripts.CLAIM)
        self._renew = redis.register_script(_scripts.RENEW)
        self._release = redis.register_script(_scripts.RELEASE)
        self._move = redis.register_script(_scripts.MOVE)
        self._reap = redis.register_script(_scripts.REAP)
        self._attach = redis.register_script(_scripts.ATTACH)
        self._seal = redis.register_script(_scripts.SEAL)
        #: The batch's epoch marker as this process first found it (``open`` or ``check``).
        self.epoch: str | None = None

    def __repr__(self) -> str:
        return f"RedisJournal(batch={self.batch!r})"

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    # --- the Journal interface ----------------------------------------------------------------

    async def open(self, meta: JournalMeta) -> Summary:
        """Record who the batch belongs to on first use; refuse another host or account later.

        Jobs left "submitting" by a worker that is gone become "uncertain" when their lease
        ends (a worker's claim or reaper does it), not here: their owner may be alive.
        """
        fields = attrs.asdict(meta)
        async with self.redis.pipeline(transaction=True) as pipe:
            for name, value in fields.items():
                pipe.hsetnx(self.meta_key, name, str(value))
            # A batch whose records are lost later (and recreated) has another marker.
            pipe.hsetnx(self.meta_key, "epoch", uuid.uuid4().hex)
            pipe.sadd(BATCHES, self.batch)
            pipe.hgetall(self.meta_key)
            stored = cast(dict[str, str], (await pipe.execute())[-1])
        await self.check(meta, stored)
        return await self.counts()

    async def check(self, meta: JournalMeta, stored: Mapping[str, str] | None = None) -> None:
        """``JournalMismatchError`` unless ``meta`` (a worker's client) may work on this batch."""
        if stored is None:
            stored = cast(dict[str, str], await self.redis.hgetall(self.meta_key))
        if not stored:
            raise BatchLostError(
                f"batch {self.batch!r} is not in this Redis: never created, or its records "
                "were lost (a restart without its data, an eviction, a flush)"
            )
        _meta(stored).check(meta, f"batch {self.batch!r} in Redis")
        self.epoch = stored.get("epoch")

    async def verify(self) -> None:
        """``BatchLostError`` when the batch's records are gone (or are another batch's of
        the same name) since this process found it: never taken for a finished batch."""
        found = cast("str | None", await self.redis.hget(self.meta_key, "epoch"))
        if found is None or found != self.epoch:
            raise BatchLostError(
                f"batch {self.batch!r} was lost: its records are gone from Redis (a restart "
                "without its data, an eviction, a flush) or were replaced. Nothing is created "
                "again; tasks already created are in the service (`miocreate task ID`)"
            )

    async def meta(self) -> JournalMeta | None:
        """Who the batch belongs to; None when Redis has no such batch."""
        stored = cast(dict[str, str], await self.redis.hgetall(self.meta_key))
        return _meta(stored) if stored else None

    async def close(self) -> None:
        """Nothing to commit: every change was durable when its script returned."""

    async def flush(self) -> None:
        """Nothing is grouped: every change is its own script."""

    async def register(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        await self.add([(job, {}) for job in jobs])
        return [record for job in jobs if (record := await self.get(job.id)) is not None]

    async def add(self, jobs: Sequence[tuple[NewJob, Mapping[str, Any]]]) -> list[JobState | None]:
        """Record new jobs with their inputs (``spec``); None for each new one, else the state
        the job already has (registering twice is harmless)."""
        keys = [self.counts_key, self.jobs_key, self.meta_key]
        async with self.redis.pipeline(transaction=False) as pipe:
            for job, spec in jobs:
                await self._add(
                    keys=[self.job_key(job.id), *keys],
                    args=[
                        job.id,
                        job.index,
                        job.fingerprint,
                        job.label,
                        json.dumps(spec),
                        self.epoch or "",
                    ],
                    client=pipe,
                )
            replies = cast(list["str | None"], await pipe.execute())
        if "lost" in replies:
            await self.verify()  # raises: the batch's records are gone
        return [None if reply is None else JobState(reply) for reply in replies]

    async def transition(
        self,
        job_id: str,
        expected: JobState | Collection[JobState],
        state: JobState,
        *,
        kind: str | None = None,
        task_id: int | None = None,
        result: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
        error: ErrorInfo | None = None,
        path: str | None = None,
        saved_size: int | None = None,
        saved_sha256: str | None = None,
    ) -> JobRecord:
        """An unfenced change (the driver's: "downloaded", or a resubmission by choice)."""
        expected_states = {expected} if isinstance(expected, JobState) else set(expected)
        if not all(state in TRANSITIONS[old] for old in expected_states):
            raise JournalStateError(f"job {job_id}: no change from {expected} to {state.value}")
        fields = _fields(kind, task_id, result, expires_at, error, path)
        if saved_size is not None:
            fields["saved_size"] = saved_size
        if saved_sha256 is not None:
            fields["saved_sha256"] = saved_sha256
        reply = await self.move(job_id, "*", expected_states, state, lease=0, fields=fields)
        record = await self.get(job_id)
        if reply != "ok" or record is None:
            raise JournalStateError(f"job {job_id} is not in {expected}: another owner moved it")
        return record

    async def get(self, job_id: str) -> JobRecord | None:
        fields = cast(dict[str, str], await self.redis.hgetall(self.job_key(job_id)))
        return _record(job_id, fields) if fields else None

    async def get_many(self, job_ids: Sequence[str]) -> list[JobRecord | None]:
        """The records of these jobs (None for each one the batch does not have)."""
        found: list[JobRecord | None] = []
        for start in range(0, len(job_ids), 500):
            page = job_ids[start : start + 500]
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in page:
                    pipe.hgetall(self.job_key(job_id))
                replies = cast(list[dict[str, str]], await pipe.execute())
            found += [
                _record(job_id, fields) if fields else None
                for job_id, fields in zip(page, replies, strict=True)
            ]
        return found

    async def records(
        self, states: Collection[JobState], *, limit: int | None = None
    ) -> AsyncIterator[JobRecord]:
        """Records in these states, soonest-expiring first, then by index.

        Reads every record in pages (a scan of the batch); meant for status and resume, not for
        the hot path.
        """
        wanted = {state.value for state in states}
        found: list[JobRecord] = []
        start = 0
        while ids := cast(list[str], await self.redis.zrange(self.jobs_key, start, start + 499)):
            start += len(ids)
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self.job_key(job_id))
                pages = cast(list[dict[str, str]], await pipe.execute())
            found += [
                _record(job_id, fields)
                for job_id, fields in zip(ids, pages, strict=True)
                if fields.get("state") in wanted
            ]
        found.sort(key=lambda r: (r.expires_at is None, r.expires_at or 0.0, r.index))
        for record in found[:limit]:
            yield record

    async def counts(self) -> Summary:
        raw = cast(dict[str, str], await self.redis.hgetall(self.counts_key))
        return Summary({JobState(state): int(n) for state, n in raw.items() if int(n)})

    # --- what many workers need ---------------------------------------------------------------

    async def options(self) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(self.options_key))

    async def set_options(self, options: Mapping[str, str]) -> None:
        await self.redis.hset(self.options_key, mapping=cast(Any, dict(options)))

    async def total(self) -> int:
        return int(await self.redis.zcard(self.jobs_key))

    async def spec(self, job_id: str) -> dict[str, Any]:
        raw = cast("str | None", await self.redis.hget(self.job_key(job_id), "spec"))
        spec: dict[str, Any] = json.loads(raw) if raw else {}
        return spec

    async def stopped(self) -> bool:
        return bool(await self.redis.exists(self.stop_key))

    def _job_keys(self, job_id: str) -> list[str]:
        return [self.job_key(job_id), self.leases_key, self.counts_key, self.outcomes_key]

    async def claim(self, job_id: str, owner: str, lease: float) -> Claim:
        """Take a job whose lease has ended (or that never had an owner): the new epoch."""
        reply = cast(
            list[str],
            await self._claim(
                keys=self._job_keys(job_id), args=[job_id, owner, int(lease * 1000), _UNCERTAIN]
            ),
        )
        if reply[0] != "claimed":
            return Claim(reply[0])
        task_id = int(reply[3]) if reply[3] else None
        return Claim("claimed", int(reply[1]), JobState(reply[2]), task_id)

    async def renew(self, job_id: str, epoch: int, lease: float) -> bool:
        """Extend the owner's lease; False when another worker owns the job now."""
        renewed = await self._renew(
            keys=[self.job_key(job_id), self.leases_key], args=[job_id, epoch, int(lease * 1000)]
        )
        return bool(renewed)

    async def attach(self, job_id: str, task_id: int) -> Attached:
        """Record a created task on a job this worker no longer owns (unfenced): the job is
        then waited for by whoever claims it, never created again ("attached"); only recorded
        on an uncertain job whose outcome its driver handed out already ("recorded"); or
        nothing ("ended": the job has a task already or ended otherwise)."""
        reply = await self._attach(
            keys=[self.job_key(job_id), self.leases_key, self.counts_key], args=[job_id, task_id]
        )
        return _ATTACHED.get(int(reply), "ended")

    async def seal(self, job_id: str) -> JobState | None:
        """The driver hands out this job's outcome: an uncertain job keeps it as its only one
        (a late creation reply is then recorded on it, never makes it run again). The job's
        state (None: no such job)."""
        state = cast(str, await self._seal(keys=[self.job_key(job_id)]))
        return JobState(state) if state else None

    async def release(self, job_id: str, epoch: int) -> bool:
        """Give a job back (a draining worker): its lease ends now. Never while submitting."""
        released = await self._release(
            keys=[self.job_key(job_id), self.leases_key], args=[job_id, epoch]
        )
        return bool(released)

    async def move(
        self,
        job_id: str,
        epoch: int | str,
        expected: Collection[JobState],
        to: JobState,
        *,
        lease: float,
        max_tasks: int = 0,
        stop: str = "",
        fields: Mapping[str, str | int | float] | None = None,
    ) -> str:
        """One change, checked against the expected states and the owner's epoch: "ok",
        "fenced", "stopped" (credits ran out on some worker) or "budget" (max_tasks reached)."""
        pairs: list[str | int | float] = []  # field, value, field, value...
        for name, value in (fields or {}).items():
            pairs += [name, value]
        states = ",".join(state.value for state in expected)
        args = [job_id, epoch, states, to.value, int(lease * 1000), max_tasks, stop, *pairs]
        keys = [*self._job_keys(job_id), self.stop_key, self.created_key]
        return cast(str, await self._move(keys=keys, args=args))

    async def reap(self, lease: float, limit: int = 100) -> list[str]:
        """Jobs whose owner stopped renewing: to be sent to the queue again."""
        ids = await self._reap(keys=[self.leases_key], args=[int(lease * 1000), limit])
        return cast(list[str], ids)


def _fields(
    kind: str | None,
    task_id: int | None,
    result: Mapping[str, Any] | None,
    expires_at: float | None,
    error: ErrorInfo | None,
    path: str | None,
) -> dict[str, str | int | float]:
    fields: dict[str, str | int | float] = {}
    if kind is not None:
        fields["kind"] = kind
    if task_id is not None:
        fields["task_id"] = task_id
    if result is not None:
        fields["result"] = json.dumps(result, separators=(",", ":"))
    if expires_at is not None:
        fields["expires_at"] = expires_at
    if error is not None:
        fields["error"] = json.dumps(attrs.asdict(error))
    if path is not None:
        fields["path"] = path
    return fields


def _meta(stored: Mapping[str, str]) -> JournalMeta:
    return JournalMeta(
        base_url=stored.get("base_url", ""),
        client=stored.get("client", ""),
        library_version=stored.get("library_version", ""),
        schema_version=int(stored.get("schema_version", "0")),
    )


def _record(job_id: str, fields: Mapping[str, str]) -> JobRecord:
    error = fields.get("error")
    return JobRecord(
        id=job_id,
        index=int(fields.get("index", "0")),
        state=JobState(fields["state"]),
        fingerprint=fields.get("fingerprint", ""),
        label=fields.get("label", ""),
        kind=fields.get("kind") or None,
        task_id=int(fields["task_id"]) if fields.get("task_id") else None,
        result=json.loads(fields["result"]) if fields.get("result") else None,
        expires_at=float(fields["expires_at"]) if fields.get("expires_at") else None,
        error=ErrorInfo(**json.loads(error)) if error else None,
        path=fields.get("path") or None,
        saved_size=int(fields["saved_size"]) if fields.get("saved_size") else None,
        saved_sha256=fields.get("saved_sha256") or None,
        updated_at=float(fields.get("updated_at", "0")),
        created_at=float(fields["created_at"]) if fields.get("created_at") else None,
        epoch=int(fields.get("epoch", "0")),
    )
