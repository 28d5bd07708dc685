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

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import anyio
import attrs
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AsyncBroker, Context, TaskiqDepends, TaskiqEvents, TaskiqState
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from .._client import MioCreate
from .._config import Config, PollPolicy
from .._journal import JournalMeta, JournalMismatchError, client_fingerprint
from .._poller import Poller
from .._version import __version__
from ._broker import TASK_NAME, connect, kick, make_broker, requeue_idle, trim_queue
from ._durability import Durability, check_durability
from ._errors import BatchLostError
from ._journal import BATCHES, Claim, RedisJournal
from ._limits import SharedRateLimiter, SharedUploads
from ._steps import Fenced, hand_back, run_job

__all__ = ["Worker", "register"]

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
    #: Its creation request is out: a lost lease does not cancel it (the reply is recorded).
    creating: bool = False
    drained: bool = False


class Worker:
    """Runs jobs of every batch sent to the Redis at ``redis_url`` until ``drain`` is set.

    Credentials and base URL as for ``MioCreate`` (arguments, else the environment). With
    ``rate_limit``, every worker of the same account shares one limiter in Redis: give each the
    same value. ``durability`` as for ``DistributedBatch``: the Redis is checked at start.
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
        durability: Durability = "always",
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.redis_url = redis_url
        self.concurrency = concurrency
        self.lease = lease
        self.claim_idle = claim_idle
        self.rate_limit = rate_limit
        self.durability: Durability = durability
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
        #: Batches whose messages were refused (lost, unknown, another account): logged once.
        self._refused: set[str] = set()

    # --- running ------------------------------------------------------------------------------

    async def run(self, drain: anyio.Event | None = None) -> None:
        """Take jobs until ``drain`` is set, then finish or hand back those in flight."""
        self._use(make_broker(self.redis_url, claim_idle=self.claim_idle))
        await self._serve(drain or anyio.Event(), own_broker=True)

    def _use(self, broker: AsyncBroker) -> None:
        self.broker: AsyncBroker = broker

        async def swap_job(batch: str, job_id: str, context: Context = _CONTEXT) -> None:
            await self._handle(batch, job_id, context)

        broker.register_task(swap_job, task_name=TASK_NAME, ack_type="manual")

    async def _serve(
        self, drain: anyio.Event, *, own_broker: bool, ready: anyio.Event | None = None
    ) -> None:
        """The worker's resources and background loops; with ``own_broker``, its listener too
        (else the user's Taskiq worker process listens, ``register``)."""
        client_id, client_secret, token, base_url = self._credentials
        self.redis: Redis = connect(self.redis_url)
        try:
            await check_durability(self.redis, self.durability)
        except BaseException:
            await self.redis.aclose()
            raise
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
        self.poller: Poller = Poller(self.client, self.poll)
        finish = anyio.Event()
        try:
            async with self.client:
                if own_broker:
                    await self.broker.startup()
                async with anyio.create_task_group() as group:
                    self._jobs = group
                    group.start_soon(self.poller.run)
                    group.start_soon(self._renew_leases)
                    group.start_soon(self._reap)
                    group.start_soon(self._reclaim)
                    if own_broker:
                        group.start_soon(self._listen, finish)
                    if ready is not None:
                        ready.set()
                    await drain.wait()
                    logger.info(
                        "draining: no new jobs; finishing or handing back %d", len(self._owned)
                    )
                    self.draining.set()
                    for lease in self._owned.values():
                        if lease.waiting:
                            lease.drained = True
                            lease.scope.cancel()
                    if own_broker:
                        await finish.wait()
                    while True:  # (the user's receiver stopped before its broker's shutdown)
                        if not self._owned:
                            break
                        await anyio.sleep(0.05)
                    group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if own_broker:
                    await self.broker.shutdown()
                await self.redis.aclose()

    # --- on a user's own Taskiq broker (``register``) ----------------------------------------

    async def _started(self, state: TaskiqState) -> None:
        """The user's Taskiq worker process started: open the resources, start the loops."""
        ready = anyio.Event()
        self._stop = anyio.Event()
        self._serving = asyncio.create_task(self._serve(self._stop, own_broker=False, ready=ready))
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({self._serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if self._serving.done():
            waiting.cancel()
            self._serving.result()  # its error (an unsafe Redis...)

    async def _stopped(self, state: TaskiqState) -> None:
        """The user's Taskiq worker process stops: finish or hand back the jobs in flight."""
        self._stop.set()
        await self._serving

    async def _listen(self, finished: anyio.Event) -> None:
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
            with _redis_away("renewing leases"):
                await self._renew_once()

    async def _renew_once(self) -> None:
        for key, lease in list(self._owned.items()):
            asked = time.monotonic()
            renewed = await lease.journal.renew(key[1], lease.epoch, self.lease)
            if renewed:
                lease.until = max(lease.until, asked + self.lease)
            # A job that finished meanwhile has no lease to renew: not a loss.
            elif self._owned.get(key) is lease:
                if lease.creating:
                    # Cancelled now, the request's reply would be lost with the task id it
                    # carries; once it comes it is recorded (attached for the job's new owner).
                    logger.warning(
                        "lost the lease of job %s of %s while its creation is out: its reply "
                        "will be recorded",
                        key[1],
                        key[0],
                    )
                    continue
                logger.warning("lost the lease of job %s of %s", key[1], key[0])
                lease.scope.cancel()

    async def _reap(self) -> None:
        """Send back to the queue the jobs whose owner stopped renewing its lease."""
        while True:
            await anyio.sleep(self.lease / 2)
            with _redis_away("looking for stopped workers' jobs"):
                await self._reap_once()

    async def _reap_once(self) -> None:
        for batch in cast("set[str]", await self.redis.smembers(BATCHES)):
            try:
                journal = await self._journal(batch)
            except (JournalMismatchError, BatchLostError):
                continue
            for job_id in await journal.reap(self.lease):
                logger.info("job %s of %s: its owner stopped; queued again", job_id, batch)
                await kick(self.broker, batch, job_id)

    async def _reclaim(self) -> None:
        """Queue again the messages a dead worker read and never acknowledged.

        taskiq-redis reclaims them (XAUTOCLAIM) only after a read that returned new messages
        (not used here, see ``_broker``): once the stream was otherwise drained, the messages a
        SIGKILLed worker had read before claiming their jobs stayed pending for ever, and the
        batch never ended. So on this worker's own clock, busy stream or not, messages idle for
        ``claim_idle`` are queued once more and acknowledged (a duplicate is harmless: the
        journal decides).
        """
        while True:
            await anyio.sleep(max(0.2, self.claim_idle / 2))
            with _redis_away("looking for idle messages"):
                await self._reclaim_once()

    async def _reclaim_once(self) -> None:
        broker = self.broker
        if not isinstance(broker, RedisStreamBroker):
            return  # a user's broker of another kind redelivers by its own means
        stream = (broker.queue_name, broker.consumer_group_name)
        for message_id in await requeue_idle(
            self.redis, stream, broker.consumer_name, self.claim_idle
        ):
            logger.info(
                "message %s: its reader stopped before acknowledging it; queued again",
                message_id,
            )
        await trim_queue(self.redis, stream)  # the queue stays as long as the work left

    async def _journal(self, batch: str) -> RedisJournal:
        """The batch's journal, once this worker's host and account are checked against it;
        ``BatchLostError`` when its records are gone."""
        journal = self._journals.get(batch)
        if journal is not None:
            try:
                await journal.verify()
            except BatchLostError:
                del self._journals[batch]  # gone, or a new batch of the same name
                journal = None
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
        except BatchLostError as error:
            # Acknowledged: no worker can run a job whose records are gone (none re-creates it).
            await context.ack()
            self._refuse(batch, f"job {job_id} of {batch} dropped: {error}")
            return
        except JournalMismatchError as error:
            # Not acknowledged: a worker of the right account takes it after ``claim_idle``.
            self._refuse(batch, f"job {job_id} of {batch} refused: {error}")
            return
        asked = time.monotonic()
        claim = await journal.claim(job_id, self.name, self.lease)
        if claim.outcome == "uncertain":
            logger.warning(
                "job %s of %s: its worker died while submitting: uncertain", job_id, batch
            )
        # The job runs in this worker's own task group, not in taskiq's task: cancelling a scope
        # in a task whose repr is taskiq's (it names every running task) costs milliseconds. An
        # error of this task (a retry middleware sends the message again) cannot touch it.
        done = anyio.Event()
        if claim.outcome == "claimed":
            self._jobs.start_soon(self._run, journal, job_id, claim, asked + self.lease, done)
        else:
            done.set()
        # The claim is durable: the message has done its work (a redelivery, or a retry, finds
        # the job owned or finished).
        await context.ack()
        await done.wait()

    def _refuse(self, batch: str, message: str) -> None:
        if batch not in self._refused:  # once per batch, not once per message
            self._refused.add(batch)
            logger.error("%s", message)

    async def _run(
        self, journal: RedisJournal, job_id: str, claim: Claim, until: float, done: anyio.Event
    ) -> None:
        key = (journal.batch, job_id)
        superseded = self._owned.get(key)
        if superseded is not None:
            # This worker claimed the job again (its lease ran out unrenewed: paused, or Redis
            # away): the older run holds a stale epoch; every change it tried would be fenced.
            superseded.scope.cancel()
        lease = self._owned[key] = _Lease(journal, claim.epoch, until)
        try:
            with lease.scope:
                await run_job(self, journal, job_id, lease, claim)
            if lease.drained:
                await hand_back(self, journal, job_id, lease.epoch)
        except Fenced:
            logger.warning("job %s of %s now belongs to another worker", job_id, journal.batch)
        except REDIS_AWAY as error:
            # Its lease ends unrenewed: a worker (this one, once Redis is back) takes it over.
            logger.error(
                "job %s of %s: Redis is away (%s); left to its lease", job_id, journal.batch, error
            )
        finally:
            if self._owned.get(key) is lease:
                del self._owned[key]
            done.set()

    def shared_uploads(self, journal: RedisJournal, ttl: float) -> SharedUploads:
        uploads = self._uploads.get(journal.batch)
        if uploads is None:
            uploads = self._uploads[journal.batch] = SharedUploads(self.redis, journal.prefix, ttl)
        return uploads


def register(broker: AsyncBroker, worker: Worker) -> Worker:
    """Add the swap task to your own Taskiq broker, run by ``taskiq worker module:broker``:
    its middlewares (Prometheus, OpenTelemetry, retries...) then see every job. ``worker``
    gives the settings (``Worker(redis_url, concurrency=..., ...)``; its ``concurrency`` is
    the Taskiq worker's ``--max-async-tasks``). Give the same broker to ``DistributedBatch``
    (``broker=``) so that the jobs are sent where it listens. The worker's resources open at
    the Taskiq worker's startup and its jobs finish (or go back to the queue) at its shutdown.

    A message sent again (Taskiq's retry middleware, a redelivery) never creates a second
    task: the shared journal decides, not the message.
    """
    worker._use(broker)
    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, worker._started)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, worker._stopped)
    return worker


#: Errors of a Redis that is away (restarting), once its client's own retries gave up.
REDIS_AWAY = (RedisConnectionError, RedisTimeoutError, OSError)


@contextmanager
def _redis_away(doing: str) -> Iterator[None]:
    """A background loop goes on when Redis is away for longer than a command's retries."""
    try:
        yield
    except REDIS_AWAY as error:
        logger.warning("%s: Redis is away (%s); trying again", doing, error)
