"""The driver: submits a batch's jobs to the shared journal and the queue, reads outcomes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import anyio
import attrs
from taskiq import AsyncBroker

from .._batch import SwapJob, SwapOutcome
from .._config import Config
from .._journal import JobState, JournalMeta, NewJob, Summary, client_fingerprint
from .._journal._tracker import ResultFetcher, restored_result
from .._version import __version__
from ._broker import connect, kick, make_broker
from ._codec import decode_error, encode_job, input_of
from ._durability import Durability, check_durability
from ._journal import RedisJournal

__all__ = ["DistributedBatch", "DistributedOutcome"]


@attrs.frozen(kw_only=True)
class DistributedOutcome(SwapOutcome):
    """A job's outcome, from whichever worker ran it. ``index`` is its submission order."""

    #: Its final state: succeeded, failed or uncertain.
    state: JobState


class DistributedBatch:
    """One batch shared by any number of workers (``miocreate worker``), through Redis.

    ``batch`` names it: the same name resumes it. ``timeout`` is each job's deadline from when
    a worker takes it; ``max_tasks`` caps the tasks the batch may create over all machines. The
    base URL and account (``MIOCREATE_BASE_URL``, ``MIOCREATE_CLIENT_ID`` or the arguments) are
    recorded: workers of another host or account refuse the batch. ``broker``: the Taskiq
    broker the workers listen on when they run on your own (``register``).

    The Redis is checked first (``UnsafeRedisError``): ``durability="always"`` (the default)
    needs ``appendonly yes``, ``appendfsync always`` and ``maxmemory-policy noeviction``;
    ``"everysec"`` accepts ``appendfsync everysec`` (a crash of the Redis machine may lose the
    last second: a task may be created twice); ``"unchecked"`` checks nothing. A batch whose
    records disappear from Redis meanwhile raises ``BatchLostError``, never ends as finished.
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
        client: ResultFetcher | None = None,
        durability: Durability = "always",
        broker: AsyncBroker | None = None,
    ) -> None:
        self.redis_url = redis_url
        #: A user's own Taskiq broker the workers listen on (``register``), started and shut
        #: down by its owner; else one of this batch's own.
        self._own_broker = broker is None
        self._broker: AsyncBroker = broker or make_broker(redis_url)
        self.durability: Durability = durability
        self.name = batch
        self._client = client
        config = Config.from_env() if base_url is None else Config(base_url=base_url)
        self._meta = JournalMeta(
            base_url=config.base_url,
            client=client_fingerprint(client_id or os.environ.get("MIOCREATE_CLIENT_ID")),
            library_version=__version__,
        )
        self._options = {
            "timeout": repr(float(timeout)),
            "max_tasks": str(max_tasks or 0),
            "upload_ttl": repr(float(upload_ttl)),
        }
        self._summary = Summary({})
        self._entered = False

    async def __aenter__(self) -> DistributedBatch:
        if self._entered:
            raise RuntimeError("a DistributedBatch can be entered once")
        self._entered = True
        self._redis = connect(self.redis_url)
        try:
            await check_durability(self._redis, self.durability)
            self.journal: RedisJournal = RedisJournal(self._redis, self.name)
            self._summary = await self.journal.open(self._meta)
            await self.journal.set_options(self._options)
            seconds, micros = await self._redis.time()
            self._started_ms = seconds * 1000 + micros // 1000
            if self._own_broker:
                await self._broker.startup()
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
            if self._own_broker:
                await self._broker.shutdown()
        finally:
            await self._redis.aclose()

    async def submit(self, jobs: Iterable[SwapJob] | AsyncIterable[SwapJob]) -> int:
        """Record the jobs and queue them; returns how many were new. Idempotent by job id
        (``SwapJob.id``, or one derived from its inputs): a job already in the batch is not
        added again; one still pending is queued again, in case the driver stopped between
        recording and queueing it (a second message for a job is harmless)."""
        new = 0
        offset = await self.journal.total()
        chunk: list[tuple[NewJob, dict[str, Any]]] = []
        position = 0
        async for job in _each(jobs):
            job_id, fingerprint, label, spec = encode_job(job)
            chunk.append((NewJob(job_id, offset + position, fingerprint, label), spec))
            position += 1
            if len(chunk) == 100:
                new += await self._add(chunk)
                chunk = []
        new += await self._add(chunk)
        self._summary = await self.journal.counts()
        return new

    async def _add(self, chunk: list[tuple[NewJob, dict[str, Any]]]) -> int:
        states = await self.journal.add(chunk)
        # Many at once: Redis writes (and fsyncs) what arrives together in one go.
        async with anyio.create_task_group() as group:
            for (job, _), state in zip(chunk, states, strict=True):
                if state in (None, JobState.PENDING):
                    group.start_soon(kick, self._broker, self.name, job.id)
        return sum(state is None for state in states)

    async def outcomes(self) -> AsyncIterator[DistributedOutcome]:
        """Outcomes as jobs finish, on any worker, until every submitted job has had one: one
        per job.

        Uncertain outcomes come last, once every other job is finished: a worker paused past
        its lease while creating (its job taken over as uncertain) may still get its
        creation's reply, and then the job waits for its task and is handed out once, with
        the task's outcome. An uncertain outcome handed out is the job's only one: a reply that
        comes later is recorded on the job (its ``task_id``, for ``outcome()`` and ``miocreate
        journal status``), never run again.

        Where this batch's reading stopped is kept in Redis: a restarted driver goes on from
        there. An outcome counts as read when the next one is asked for, so the last one handed
        out before a crash is handed out once more.
        """
        journal, redis = self.journal, self._redis
        reader = await redis.hgetall(journal.reader_key)
        cursor = reader.get("cursor", "0-0")
        while True:
            # Gone records must not read as a finished batch (total 0).
            await journal.verify()
            # Every job final before the read that finds nothing new: every outcome was read.
            finished = not await self._unfinished()
            reply = cast(
                "list[tuple[str, list[tuple[str, dict[str, str]]]]]",
                await redis.xread(
                    {journal.outcomes_key: cursor}, count=100, block=None if finished else 1000
                ),
            )
            self._summary = await journal.counts()
            for _, entries in reply:
                for entry_id, fields in entries:
                    job_id = fields["id"]
                    if fields.get("state") == JobState.UNCERTAIN.value:
                        await redis.sadd(journal.held_key, job_id)  # handed out last
                    else:
                        # (A held job attached to its late task: this is its one outcome.)
                        await redis.srem(journal.held_key, job_id)
                        resumed = int(entry_id.split("-")[0]) < self._started_ms
                        outcome = await self._outcome(job_id, resumed)
                        if outcome is not None:
                            yield outcome
                    cursor = entry_id
                    await redis.hset(journal.reader_key, "cursor", cursor)
            # Read entries are dropped (the journal's records stay the truth); the last one is
            # kept: it is handed out again after a crash.
            if reply:
                await redis.xtrim(journal.outcomes_key, minid=cursor, approximate=False)
                continue
            if not finished:
                continue
            held = cast("set[str]", await redis.smembers(journal.held_key))
            revived = False
            for record in sorted(
                filter(None, await journal.get_many(sorted(held))), key=lambda r: r.index
            ):
                # Sealed, then handed out: a late reply no longer revives it. (Revived just
                # before: it runs again, and its outcome comes through the stream.)
                state = await journal.seal(record.id)
                if state is JobState.UNCERTAIN:
                    resumed = record.updated_at * 1000 < self._started_ms
                    outcome = await self._outcome(record.id, resumed)
                    if outcome is not None:
                        yield outcome
                elif state not in _FINAL:
                    revived = True
                await redis.srem(journal.held_key, record.id)
            if not revived:
                return

    async def _unfinished(self) -> int:
        counts = await self.journal.counts()
        return sum(counts[state] for state in JobState if state not in _FINAL)

    async def outcome(self, job_id: str) -> DistributedOutcome | None:
        """The job's outcome if it has one (whether ``outcomes()`` handed it out or not), else
        None: how a rerun finds the results an earlier run read and did not save. An uncertain
        outcome found here is the job's only one, as in ``outcomes()``."""
        await self.journal.seal(job_id)
        return await self._outcome(job_id, resumed=True)

    async def _outcome(self, job_id: str, resumed: bool) -> DistributedOutcome | None:
        record = await self.journal.get(job_id)
        if record is None:
            await self.journal.verify()  # records are deleted only with the whole batch
        if record is None or record.state not in _FINAL:
            return None
        spec = await self.journal.spec(job_id)
        result = None
        if record.result:
            result = restored_result(record, self._client or _NO_CLIENT)
        error = decode_error(record.error, record.task_id) if record.error else None
        return DistributedOutcome(
            job=SwapJob(input_of(spec["image"]), input_of(spec["face"]), spec["hd"], spec["kind"]),
            result=result,
            error=error,
            task_id=record.task_id,
            index=record.index,
            job_id=job_id,
            state=record.state,
            resumed=resumed,
        )

    def summary(self) -> Summary:
        """Jobs by state, as last read (by ``submit``, ``outcomes`` or ``refresh``)."""
        return self._summary

    async def refresh(self) -> Summary:
        """Read the counts by state again."""
        self._summary = await self.journal.counts()
        return self._summary


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


_FINAL = frozenset(
    {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.UNCERTAIN,
        JobState.EXPIRED,
        JobState.DOWNLOADED,
    }
)


class _Unbound:
    """Results read without a client: downloading them says to give the batch a client."""

    @property
    def config(self) -> Config:
        raise RuntimeError("give DistributedBatch(client=...) to download results")

    async def get_access_url(self, key: str) -> str:
        raise RuntimeError("give DistributedBatch(client=...) to download results")

    async def download(self, *args: object, **kwargs: object) -> Path:
        raise RuntimeError("give DistributedBatch(client=...) to download results")


_NO_CLIENT = _Unbound()
