"""The driver: submits a batch's jobs to the shared journal and the queue, reads outcomes."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import Any, cast

import attrs
from redis.asyncio import Redis

from .._batch import SwapJob, SwapOutcome
from .._client import Key
from .._config import Config
from ._broker import kick, make_broker
from ._codec import decode_error, decode_result, encode_job, job_identity
from ._store import SharedJournal, account_fingerprint

__all__ = ["DistributedBatch", "DistributedOutcome"]


@attrs.frozen(kw_only=True)
class DistributedOutcome(SwapOutcome):
    """A job's outcome, from whichever worker ran it. ``index`` is its submission order."""

    #: The job's id in the shared journal.
    job_id: str
    #: Its final state: "succeeded", "failed" or "uncertain".
    state: str
    #: True when it ended before this driver started reading (an earlier run's outcome).
    resumed: bool = False


class DistributedBatch:
    """One batch shared by any number of workers (``miocreate worker``), through Redis.

    ``batch`` names it: the same name resumes it. ``timeout`` is each job's deadline from when
    a worker takes it; ``max_tasks`` caps the tasks the batch may create over all machines. The
    base URL and account (``MIOCREATE_BASE_URL``, ``MIOCREATE_CLIENT_ID`` or the arguments) are
    recorded: workers of another host or account refuse the batch.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        batch: str,
        base_url: str | None = None,
        client_id: str | None = None,
        timeout: float = 1800.0,
        max_tasks: int | None = None,
        upload_ttl: float = 3600.0,
    ) -> None:
        self.redis_url = redis_url
        self.name = batch
        config = Config.from_env() if base_url is None else Config(base_url=base_url)
        account = account_fingerprint(client_id or os.environ.get("MIOCREATE_CLIENT_ID"))
        self._meta = {
            "base_url": config.base_url,
            "account": account,
            "timeout": repr(float(timeout)),
            "max_tasks": str(max_tasks or 0),
            "upload_ttl": repr(float(upload_ttl)),
        }
        self._counts: dict[str, int] = {}
        self._entered = False

    async def __aenter__(self) -> DistributedBatch:
        if self._entered:
            raise RuntimeError("a DistributedBatch can be entered once")
        self._entered = True
        self._redis = Redis.from_url(self.redis_url, decode_responses=True)
        try:
            self.journal = SharedJournal(self._redis, self.name)
            await self.journal.open(self._meta)
            seconds, micros = await self._redis.time()
            self._started_ms = seconds * 1000 + micros // 1000
            self._broker = make_broker(self.redis_url)
            await self._broker.startup()
            self._counts = await self.journal.counts()
        except BaseException:
            await self._redis.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._broker.shutdown()
        finally:
            await self._redis.aclose()

    async def submit(self, jobs: Iterable[SwapJob] | AsyncIterable[SwapJob]) -> int:
        """Record the jobs and queue them; returns how many were new. Idempotent by job id:
        a job already in the batch is not added again (one still pending is queued again, in
        case the driver stopped between recording and queueing it)."""
        new = 0
        async for job in _each(jobs):
            spec = encode_job(job)
            job_id = job_identity(job, spec)
            state = await self.journal.add(job_id, spec)
            if state is None:
                new += 1
            if state in (None, "pending"):
                await kick(self._broker, self.name, job_id)
        self._counts = await self.journal.counts()
        return new

    async def outcomes(self) -> AsyncIterator[DistributedOutcome]:
        """Outcomes as jobs finish, on any worker, until every submitted job has one.

        Where this batch's reading stopped is kept in Redis: a restarted driver goes on from
        there. An outcome counts as read when the next one is asked for, so the last one handed
        out before a crash is handed out once more.
        """
        journal, redis = self.journal, self._redis
        reader = await redis.hgetall(journal.reader_key)
        cursor = reader.get("cursor", "0-0")
        read = int(reader.get("read", "0"))
        while read < await journal.total():
            reply = cast(
                "list[tuple[str, list[tuple[str, dict[str, str]]]]]",
                await redis.xread({journal.outcomes_key: cursor}, count=100, block=1000),
            )
            self._counts = await journal.counts()
            for _, entries in reply:
                for entry_id, fields in entries:
                    yield await self._outcome(entry_id, fields["id"])
                    read += 1
                    cursor = entry_id
                    await redis.hset(journal.reader_key, mapping={"cursor": cursor, "read": read})

    async def _outcome(self, entry_id: str, job_id: str) -> DistributedOutcome:
        record = await self.journal.record(job_id)
        result = decode_result(record["result"]) if record.get("result") else None
        error = decode_error(record["error"]) if record.get("error") else None
        task_id = int(record["task_id"]) if record.get("task_id") else None
        return DistributedOutcome(
            job=_job_of(json.loads(record["spec"])),
            result=result,
            error=error,
            task_id=task_id,
            index=int(record.get("seq", "0")),
            job_id=job_id,
            state=record["state"],
            resumed=int(entry_id.split("-")[0]) < self._started_ms,
        )

    def summary(self) -> dict[str, int]:
        """Jobs by state, as last read (by ``submit``, ``outcomes`` or ``refresh``)."""
        return dict(self._counts)

    async def refresh(self) -> dict[str, int]:
        """Read the counts by state again."""
        self._counts = await self.journal.counts()
        return self.summary()


async def _each(jobs: Iterable[SwapJob] | AsyncIterable[SwapJob]) -> AsyncIterator[SwapJob]:
    if isinstance(jobs, AsyncIterable):
        async for job in jobs:
            yield _checked(job)
    else:
        for job in jobs:
            yield _checked(job)


def _checked(job: object) -> SwapJob:
    if not isinstance(job, SwapJob):
        raise TypeError(f"submit takes SwapJob items, got {type(job).__name__}")
    return job


def _input_of(spec: dict[str, Any]) -> str:
    if "key" in spec:
        return Key(spec["key"])
    return str(spec.get("url") or spec["path"])


def _job_of(spec: dict[str, Any]) -> SwapJob:
    return SwapJob(_input_of(spec["image"]), _input_of(spec["face"]), spec["hd"], spec["kind"])
