"""A worker: takes job ids from the stream, claims them in the shared journal, runs them.

One ``MioCreate`` and one shared poller per worker process; taskiq runs the jobs on its loop,
``concurrency`` at a time. Every change of a job's state is a journal script checked against
the worker's epoch, so a worker that lost its lease can never create a second task.

A worker also keeps its leases on its own monotonic clock (from the moment it asked for each
renewal). Each job runs the one job runner (``_runner``) over the fenced Redis journal's steps
(``_steps``): a creation goes out only while enough of the lease is left, and a creation's
reply that comes after the job was taken over is still recorded.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

import anyio
import attrs
from redis.asyncio import Redis
from taskiq import Context, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from .._client import MioCreate
from .._config import Config, PollPolicy
from .._journal import JournalMeta, JournalMismatchError, client_fingerprint
from .._poller import Poller
from .._version import __version__
from ._broker import TASK_NAME, kick, make_broker
from ._journal import BATCHES, Claim, RedisJournal
from ._limits import SharedRateLimiter, SharedUploads
from ._steps import Fenced, hand_back, run_job

__all__ = ["Worker"]

logger = logging.getLogger("miocreate_async.distributed")

#: Taskiq hands the task its context (to acknowledge by hand) through this default.
_CONTEXT: Context = TaskiqDepends()


@attrs.define(eq=False)
class _Lease:
    """A job this worker owns: renewed in the background; cancelled when lost or drained."""

    journal: RedisJournal
    epoch: int
    #: When the lease ends (``time.monotonic()``), counted from when its last renewal was asked.
    until: float
    scope: anyio.CancelScope = attrs.Factory(anyio.CancelScope)
    #: Only polling: a draining worker may give the job back (polls are free to redo).
    waiting: bool = False
    drained: bool = False


class Worker:
    """Runs jobs of every batch sent to the Redis at ``redis_url`` until ``drain`` is set.

    Credentials and base URL as for ``MioCreate`` (arguments, else the environment). With
    ``rate_limit``, every worker of the same account shares one limiter in Redis: give each the
    same value.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        concurrency: int = 32,
        client_id: str | None = None,
        client_secret: str | None = None,
        token: str | None = None,
        base_url: str | None = None,
        rate_limit: float | None = None,
        lease: float = 30.0,
        claim_idle: float = 60.0,
        poll: PollPolicy | None = None,
        name: str | None = None,
        url_sources: str | Sequence[str] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.redis_url = redis_url
        self.concurrency = concurrency
        self.lease = lease
        self.claim_idle = claim_idle
        self.rate_limit = rate_limit
        self.poll: PollPolicy = poll or PollPolicy()
        self.name: str = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._credentials = (client_id, client_secret, token, base_url)
        #: Where URL inputs may be read from besides global addresses (``Config.url_sources``;
        #: else ``MIOCREATE_URL_SOURCES``).
        self.url_sources = url_sources
        env_id = client_id
        if client_id is None and token is None and not os.environ.get("MIOCREATE_TOKEN"):
            env_id = os.environ.get("MIOCREATE_CLIENT_ID")
        self.account: str = client_fingerprint(env_id)
        self.draining: anyio.Event = anyio.Event()
        self._owned: dict[tuple[str, str], _Lease] = {}
        self._journals: dict[str, RedisJournal] = {}
        self._uploads: dict[str, SharedUploads] = {}

    # --- running ------------------------------------------------------------------------------

    async def run(self, drain: anyio.Event | None = None) -> None:
        """Take jobs until ``drain`` is set, then finish or hand back those in flight."""
        client_id, client_secret, token, base_url = self._credentials
        self.redis: Redis = Redis.from_url(self.redis_url, decode_responses=True)
        limiter = None
        if self.rate_limit:
            key = f"miocreate:rate:{self.account or 'default'}"
            limiter = SharedRateLimiter(self.redis, key, self.rate_limit)
        settings: dict[str, Any] = {"base_url": base_url} if base_url else {}
        if self.url_sources is not None:
            settings["url_sources"] = self.url_sources
        self.client: MioCreate = MioCreate(
            client_id,
            client_secret,
            token=token,
            config=Config.from_env(**settings),
            rate_limit=limiter,
        )
        self.broker: RedisStreamBroker = make_broker(self.redis_url, claim_idle=self.claim_idle)

        async def swap_job(batch: str, job_id: str, context: Context = _CONTEXT) -> None:
            await self._handle(batch, job_id, context)

        self.broker.register_task(swap_job, task_name=TASK_NAME, ack_type="manual")
        self.poller: Poller = Poller(self.client, self.poll)
        finish = anyio.Event()
        try:
            async with self.client:
                await self.broker.startup()
                async with anyio.create_task_group() as group:
                    self._jobs = group
                    group.start_soon(self.poller.run)
                    group.start_soon(self._renew_leases)
                    group.start_soon(self._reap)
                    group.start_soon(self._listen, finish)
                    await (drain or anyio.Event()).wait()
                    logger.info(
                        "draining: no new jobs; finishing or handing back %d", len(self._owned)
                    )
                    self.draining.set()
                    for lease in self._owned.values():
                        if lease.waiting:
                            lease.drained = True
                            lease.scope.cancel()
                    await finish.wait()
                    group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.broker.shutdown()
                await self.redis.aclose()

    async def _listen(self, finished: anyio.Event) -> None:
        import asyncio

        stop = asyncio.Event()
        receiver = Receiver(
            self.broker,
            max_async_tasks=self.concurrency,
            max_prefetch=0,
            run_startup=False,
            ack_type=AcknowledgeType.MANUAL,
            propagate_exceptions=False,
        )
        async with anyio.create_task_group() as group:

            async def stop_when_draining() -> None:
                await self.draining.wait()
                stop.set()

            group.start_soon(stop_when_draining)
            await receiver.listen(stop)
            group.cancel_scope.cancel()
        finished.set()

    async def _renew_leases(self) -> None:
        while True:
            await anyio.sleep(self.lease / 3)
            for key, lease in list(self._owned.items()):
                asked = time.monotonic()
                renewed = await lease.journal.renew(key[1], lease.epoch, self.lease)
                if renewed:
                    lease.until = max(lease.until, asked + self.lease)
                # A job that finished meanwhile has no lease to renew: not a loss.
                elif self._owned.get(key) is lease:
                    logger.warning("lost the lease of job %s of %s", key[1], key[0])
                    lease.scope.cancel()

    async def _reap(self) -> None:
        """Send back to the queue the jobs whose owner stopped renewing its lease."""
        while True:
            await anyio.sleep(self.lease / 2)
            for batch in cast("set[str]", await self.redis.smembers(BATCHES)):
                try:
                    journal = await self._journal(batch)
                except JournalMismatchError:
                    continue
                for job_id in await journal.reap(self.lease):
                    logger.info("job %s of %s: its owner stopped; queued again", job_id, batch)
                    await kick(self.broker, batch, job_id)

    async def _journal(self, batch: str) -> RedisJournal:
        """The batch's journal, once this worker's host and account are checked against it."""
        journal = self._journals.get(batch)
        if journal is None:
            journal = RedisJournal(self.redis, batch)
            meta = JournalMeta(
                base_url=self.client.config.base_url,
                client=self.account,
                library_version=__version__,
            )
            await journal.check(meta)
            self._journals[batch] = journal
        return journal

    # --- one job ------------------------------------------------------------------------------

    async def _handle(self, batch: str, job_id: str, context: Context) -> None:
        try:
            journal = await self._journal(batch)
        except JournalMismatchError as error:
            # Not acknowledged: a worker of the right account takes it after ``claim_idle``.
            logger.error("job %s of %s refused: %s", job_id, batch, error)
            return
        asked = time.monotonic()
        claim = await journal.claim(job_id, self.name, self.lease)
        # The claim is durable: the message has done its work (a redelivery would find the job
        # owned or finished).
        await context.ack()
        if claim.outcome == "uncertain":
            logger.warning(
                "job %s of %s: its worker died while submitting: uncertain", job_id, batch
            )
        if claim.outcome != "claimed":
            return
        # The job runs in this worker's own task group, not in taskiq's task: cancelling a scope
        # in a task whose repr is taskiq's (it names every running task) costs milliseconds.
        done = anyio.Event()
        self._jobs.start_soon(self._run, journal, job_id, claim, asked + self.lease, done)
        await done.wait()

    async def _run(
        self, journal: RedisJournal, job_id: str, claim: Claim, until: float, done: anyio.Event
    ) -> None:
        lease = self._owned[(journal.batch, job_id)] = _Lease(journal, claim.epoch, until)
        try:
            with lease.scope:
                await run_job(self, journal, job_id, lease, claim)
            if lease.drained:
                await hand_back(self, journal, job_id, lease.epoch)
        except Fenced:
            logger.warning("job %s of %s now belongs to another worker", job_id, journal.batch)
        finally:
            del self._owned[(journal.batch, job_id)]
            done.set()

    def shared_uploads(self, journal: RedisJournal, ttl: float) -> SharedUploads:
        uploads = self._uploads.get(journal.batch)
        if uploads is None:
            uploads = self._uploads[journal.batch] = SharedUploads(self.redis, journal.prefix, ttl)
        return uploads
