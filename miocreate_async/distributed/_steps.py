"""A distributed job's life: the runner (``_runner``) over the fenced Redis journal.

Every change of the job's record is a journal script checked against the worker's epoch
(``RedisJournal.move``): a worker that lost its lease gets "fenced" (``Fenced``) and can never
create a second task. The lease is kept on the worker's own monotonic clock (from the moment
each renewal was asked): a creation goes out only while at least ``SEND_LEASE_SHARE`` of the
lease is left (``send_by``, checked just before the request is sent), so a worker paused past
its lease (a SIGSTOP, a long GC) does not send it. A creation's reply that comes after the job
was taken over is still recorded (``RedisJournal.attach``): the task is waited for, never lost
nor re-created.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

import anyio
import attrs
from taskiq import AsyncBroker

from .._client import MioCreate
from .._errors import (
    InsufficientCreditsError,
    InvalidInputError,
    MioCreateError,
    NotSentError,
    SubmissionUncertainError,
)
from .._formats import media_type_of_name
from .._journal import ErrorInfo, InputChangedError, JobState
from .._journal._tracker import stored_result
from .._models import TaskHandle, TaskInfo
from .._operations import TaskKind
from .._poller import Poller
from .._runner import Inputs, JobKind, Released, Runner, SwapResult
from .._telemetry import span
from .._transfer._inputs import Key, is_url
from ._broker import kick
from ._codec import describe, input_of
from ._errors import TaskBudgetError
from ._journal import Claim, RedisJournal
from ._limits import SharedUploads, file_digest

__all__ = ["SEND_LEASE_SHARE", "Fenced", "hand_back", "run_job"]

logger = logging.getLogger("miocreate_async.distributed")

#: The share of a lease that must be left when a creation is sent (else it is not sent).
SEND_LEASE_SHARE = 1 / 3


class Fenced(Exception):
    """The journal refused a change: another worker owns the job now."""


class Lease(Protocol):
    """The worker's hold on one job."""

    @property
    def epoch(self) -> int: ...

    #: When the lease ends (``time.monotonic()``), counted from when its last renewal was asked.
    until: float
    #: Only polling: a draining worker may give the job back (polls are free to redo).
    waiting: bool
    #: Its creation request is out (from the intent recorded to its answer).
    creating: bool


class JobWorker(Protocol):
    """What a job uses of its ``Worker``."""

    @property
    def lease(self) -> float: ...
    @property
    def client(self) -> MioCreate: ...
    @property
    def poller(self) -> Poller: ...
    @property
    def broker(self) -> AsyncBroker: ...
    @property
    def draining(self) -> anyio.Event: ...

    def shared_uploads(self, journal: RedisJournal, ttl: float) -> SharedUploads: ...


async def run_job(
    worker: JobWorker, journal: RedisJournal, job_id: str, lease: Lease, claim: Claim
) -> None:
    """Run a job this worker claimed to its end, recorded; or hand it back (draining)."""
    assert claim.state is not None
    options = await journal.options()
    deadline = anyio.current_time() + float(options.get("timeout", "1800"))
    steps = _RedisSteps(worker, journal, job_id, lease, claim.state, options)
    runner = Runner(
        steps,
        worker.client,
        worker.client.config.retry,
        upload=steps.upload,
        watch=steps.watch,
        deadline=deadline,
        # The session's retries are its own; a refusal comes back here and through the
        # journal (a new intent, its lease read again).
        retries_until_deadline=False,
    )
    try:
        if claim.state is JobState.SUBMITTED:
            assert claim.task_id is not None
            record = await journal.get(job_id)
            video = record is not None and record.kind == "video"
            kind = TaskKind.VIDEO_SWAP if video else TaskKind.IMAGE_SWAP
            runner.task = TaskHandle(claim.task_id, kind)
            await runner.run()
            return
        if claim.state is JobState.UPLOADED:  # uploads are free: redone
            await steps.move(JobState.UPLOADED, JobState.PENDING)
        steps.spec = await journal.spec(job_id)
        runner.hd = bool(steps.spec.get("hd"))
        # The job's span continues the trace of whoever submitted it (carried in its spec).
        trace, kind_name = steps.spec.get("trace"), steps.spec.get("kind") or "unknown"
        with span("miocreate.job", parent=trace, kind=kind_name):
            await runner.run()
    except Released:
        pass


async def hand_back(worker: JobWorker, journal: RedisJournal, job_id: str, epoch: int) -> None:
    """Draining: give the job back to the queue for another worker."""
    if await journal.release(job_id, epoch):
        await kick(worker.broker, journal.batch, job_id)


class _RedisSteps:
    """The runner's ``Steps`` for one job of a distributed batch, and its uploads and waits."""

    def __init__(
        self,
        worker: JobWorker,
        journal: RedisJournal,
        job_id: str,
        lease: Lease,
        state: JobState,
        options: dict[str, str],
    ) -> None:
        self.worker = worker
        self.journal = journal
        self.id = job_id
        self.lease = lease
        #: The record's state as this worker last moved it.
        self.state = state
        self.options = options
        self.spec: dict[str, Any] = {}
        self.task_id: int | None = None

    async def move(
        self, expected: JobState, to: JobState, *, max_tasks: int = 0, stop: str = "", **fields: Any
    ) -> str:
        asked = time.monotonic()
        reply = await self.journal.move(
            self.id,
            self.lease.epoch,
            (expected,),
            to,
            lease=self.worker.lease,
            max_tasks=max_tasks,
            stop=stop,
            fields=fields,
        )
        if reply == "fenced":
            raise Fenced
        if reply == "ok":  # a change renews the lease
            self.lease.until = max(self.lease.until, asked + self.worker.lease)
            self.state = to
        return reply

    async def _hand_back(self) -> None:
        await hand_back(self.worker, self.journal, self.id, self.lease.epoch)
        raise Released

    # --- the runner's Steps -------------------------------------------------------------------

    async def begin(self) -> None:
        if await self.journal.stopped():
            raise _no_credits()
        if self.worker.draining.is_set():
            await self._hand_back()

    async def uploaded(self) -> None:
        """Not recorded: uploads are redone by whoever runs the job next."""

    async def intent(self, kind: JobKind) -> float | None:
        if self.worker.draining.is_set():
            await self._hand_back()
        # The intent is durable (Redis with appendfsync always) before the request goes.
        max_tasks = int(self.options.get("max_tasks", "0"))
        reply = await self.move(
            JobState.PENDING, JobState.SUBMITTING, max_tasks=max_tasks, kind=kind
        )
        if reply == "stopped":
            raise _no_credits()
        if reply == "budget":
            raise TaskBudgetError(
                f"the batch's max_tasks budget ({max_tasks}) is used up: not submitted"
            )
        self.lease.creating = True
        # Sent only while enough of the lease is left, on this worker's own clock.
        return self.lease.until - self.worker.lease * SEND_LEASE_SHARE

    async def created(self, task: TaskHandle[Any]) -> None:
        self.lease.creating = False
        self.task_id = task.id
        # Paid: recorded even if the lease is found lost meanwhile (its scope cancelled).
        with anyio.CancelScope(shield=True):
            try:
                await self.move(JobState.SUBMITTING, JobState.SUBMITTED, task_id=task.id)
            except Fenced:
                await self._attach(task.id)
                raise

    async def refused(self, error: MioCreateError) -> None:
        self.lease.creating = False
        await self.move(JobState.SUBMITTING, JobState.PENDING)
        if isinstance(error, NotSentError):
            logger.warning(
                "job %s of %s: too little of its lease was left to send its creation (paused?): "
                "not sent; handed back",
                self.id,
                self.journal.batch,
            )
            await self._hand_back()
        # Refused: the runner waits, then tries again.

    async def uncertain(self, error: SubmissionUncertainError | None) -> None:
        self.lease.creating = False
        if error is not None:
            info = json.dumps(attrs.asdict(ErrorInfo.of(error)))
            await self.move(JobState.SUBMITTING, JobState.UNCERTAIN, error=info)

    async def succeeded(self, result: SwapResult) -> SwapResult:
        # Keys and sizes, not signed URLs: a driver fetches a fresh URL to download.
        data = json.dumps(stored_result(result), separators=(",", ":"))
        expires = result.expires_at.timestamp() if result.expires_at else ""
        await self.move(JobState.SUBMITTED, JobState.SUCCEEDED, result=data, expires_at=expires)
        return result

    async def ended(self, error: MioCreateError) -> None:
        self.lease.creating = False
        state = self.state
        if state is JobState.UNCERTAIN:
            return  # recorded as such by ``uncertain``
        fields: dict[str, Any] = {}
        if state is JobState.SUBMITTED and self.task_id is not None:
            fields["task_id"] = self.task_id
        if error.task_id is not None:
            fields["task_id"] = error.task_id
        # The first 801 of a creation stops submissions on every worker at once.
        stop = state is JobState.SUBMITTING and isinstance(error, InsufficientCreditsError)
        info = json.dumps(attrs.asdict(ErrorInfo.of(error)))
        await self.move(state, JobState.FAILED, stop="1" if stop else "", error=info, **fields)

    async def _attach(self, task_id: int) -> None:
        """The reply came after another worker took the job over: record the task anyway, and
        queue the job, so that its owner waits for the task instead of losing it."""
        attached = await self.journal.attach(self.id, task_id)
        if attached == "attached":
            logger.warning(
                "job %s of %s: its task %d was created after the job was taken over; recorded, "
                "to be waited for",
                self.id,
                self.journal.batch,
                task_id,
            )
            await kick(self.worker.broker, self.journal.batch, self.id)
        elif attached == "recorded":
            logger.warning(
                "job %s of %s: its task %d was created after the job was taken over and handed "
                "out uncertain; recorded on the job (collect it with `miocreate task %d --wait`)",
                self.id,
                self.journal.batch,
                task_id,
                task_id,
            )
        else:
            logger.error(
                "job %s of %s: task %d was created after the job was taken over and ended "
                "otherwise; the task exists (collect it with `miocreate task %d --wait`)",
                self.id,
                self.journal.batch,
                task_id,
                task_id,
            )

    # --- uploads and waits --------------------------------------------------------------------

    async def upload(self) -> Inputs:
        ttl = float(self.options.get("upload_ttl", "3600"))
        face_key = await self._face(self.spec["face"], ttl)
        image_key = await self._upload(self.spec["image"], "image")
        return Inputs(image_key, face_key, _is_video(image_key, self.spec.get("kind")))

    async def _upload(self, spec: dict[str, Any], role: str) -> str:
        source = input_of(spec)
        if isinstance(source, Key):
            return source
        if is_url(source):  # streamed from its source into the PUT by the client
            return await self.worker.client.upload(source)
        # The driver saw this file (size and mtime): a change since is refused, not swapped.
        seen = spec.get("fingerprint")
        if seen and seen != "missing":
            now = await anyio.to_thread.run_sync(describe, source, role)
            if now.fingerprint != seen:
                raise InputChangedError(
                    f"the {role} {source} changed since the job was submitted (size or "
                    "modification time): refused rather than swapped as if it were the same"
                )
        return await self.worker.client.upload(source)

    async def _face(self, spec: dict[str, Any], ttl: float) -> str:
        source = input_of(spec)
        if isinstance(source, Key) or is_url(source):
            return await self._upload(spec, "face")
        try:
            digest = await anyio.to_thread.run_sync(file_digest, source)
        except OSError:
            return await self._upload(spec, "face")  # the upload gives the typed error
        uploads = self.worker.shared_uploads(self.journal, ttl)
        return await uploads.key_of(digest, lambda: self._upload(spec, "face"))

    async def watch(self, task: TaskHandle[Any]) -> TaskInfo[Any]:
        if self.worker.draining.is_set():
            await self._hand_back()
        self.task_id = task.id
        self.lease.waiting = True  # a draining worker may cancel this wait and hand it back
        try:
            return await self.worker.poller.watch(task)
        finally:
            self.lease.waiting = False


def _no_credits() -> InsufficientCreditsError:
    return InsufficientCreditsError(
        "credits ran out (801) during this batch: not submitted",
        operation="distributed",
    )


def _is_video(image_key: str, kind: str | None) -> bool:
    if kind is not None:
        return kind == "video"
    media = media_type_of_name(image_key)
    if media is None:
        raise InvalidInputError(
            f"cannot tell whether {image_key!r} is an image or a video: give the job a kind"
        )
    return media.is_video
