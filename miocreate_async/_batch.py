"""``swap_many``: many swaps at once, in one task group, results as they finish.

::

    jobs (any iterable or async iterable, read lazily)
      -> feeder -> [bounded stream] -> ``concurrency`` workers, each one job at a time, run by
         the job runner (``_runner.Runner``) over the job's steps (``_Job``):
             upload (the single-flight UploadCache; the client's transfer limiter)
             create (the submission limiter; refusals retried until the job's deadline)
             wait   (the one shared Poller, with its own bound on poll requests)
      -> [stream of outcomes] -> ``async for outcome in results`` (completion order)

Everything runs in one anyio task group owned by the ``async with`` block: leaving the block
cancels whatever still runs, at once. ``events`` (a callback) hears of upload bytes, tasks
created, polls and jobs done, for progress displays.

With a journal (``journal=``), the feeder first asks it where each job stands
(``BatchJournal.admit``): finished jobs end at once from their records, jobs whose task exists
are only waited for, and each step of a job is recorded (``JobEntry``), the intent durably
before its creation request.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Protocol

import anyio
import attrs
from anyio.abc import ObjectReceiveStream, ObjectSendStream, TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._checks import at_least, check_timeout
from ._config import IMAGE_TIMEOUT, VIDEO_TIMEOUT, Config, PollPolicy
from ._correlation import current_job
from ._errors import (
    CALLED,
    ConnectError,
    InsufficientCreditsError,
    InvalidInputError,
    MioCreateError,
    MioCreateTimeoutError,
    ProtocolError,
    ServiceUnreachableError,
    SubmissionUncertainError,
)
from ._fairness import BatchTurns, Held, Lane, Scheduler, check_key, check_lane, in_turns_of_keys
from ._formats import MediaType, is_video_name
from ._journal import JobState, Journal, Summary, as_journal
from ._journal._tracker import Action, BatchJournal, JobEntry, ResultFetcher
from ._models import (
    ProgressCallback,
    TaskHandle,
    TaskInfo,
    TaskStatus,
)
from ._operations import TaskKind
from ._poller import Learnt, Poller, TaskReader
from ._redact import redact_url
from ._retry import ConnectionFailures
from ._runner import Creator, Inputs, JobKind, Runner, SwapResult
from ._telemetry import outcome_of, span
from ._transfer._cache import Put, UploadCache
from ._transfer._inputs import PreparedUpload, UploadSource

__all__ = [
    "BatchEvent",
    "BatchStats",
    "JobDone",
    "SwapJob",
    "SwapOptions",
    "SwapOutcome",
    "SwapResults",
    "TaskCreated",
    "TaskPolled",
    "UploadProgress",
    "swap_many",
]

logger = logging.getLogger("miocreate_async")


class BatchClient(TaskReader, ResultFetcher, Creator, Protocol):
    """What the batch uses of the client (``MioCreate``), so that it never imports it."""

    config: Config


def _short_repr(source: object) -> str:
    """Bytes show as their size: a 5 MB image would make a 15 MB repr."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{type(source).__name__} of {memoryview(source).nbytes} bytes>"
    if type(source) is str and source.startswith(("http://", "https://")):
        return repr(redact_url(source))  # a signed URL's signature is never printed
    return repr(source)


def _bool(_: object, attribute: Any, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{attribute.name} must be True or False, got {value!r}")


@attrs.frozen(init=False)
class SwapJob:
    """One swap of a batch: put ``face`` into ``media`` (an image or a video).

    ``media`` and ``face`` take what the one-call jobs take: a path, bytes, a binary file, a
    ``StreamSource`` or an uploaded ``Key``. ``kind`` is "image" or "video"; None tells by the
    file's content (or by a key's extension). ``image`` is an alias of ``media``, as a keyword
    and as an attribute (the name it had before videos were batched too).
    """

    media: UploadSource = attrs.field(repr=_short_repr)
    face: UploadSource = attrs.field(repr=_short_repr)
    hd: bool = attrs.field(default=False, validator=_bool)
    kind: JobKind | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(("image", "video")))
    )
    #: The job's name in a journal; without one, it is derived from the inputs.
    id: str | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
    )
    #: Who the job is for (a user of your app): the client's per-key limits apply to it
    #: (``Fairness``, see the guide "Spend and fairness"). Not part of the job's identity.
    key: str | None = attrs.field(default=None, kw_only=True, converter=check_key)

    def __init__(
        self,
        media: UploadSource | None = None,
        face: UploadSource | None = None,
        hd: bool = False,
        kind: JobKind | None = None,
        *,
        image: UploadSource | None = None,
        id: str | None = None,
        key: str | None = None,
    ) -> None:
        if (media is None) == (image is None):
            raise TypeError("SwapJob takes the media to edit once: media=... (or image=...)")
        if face is None:
            raise TypeError("SwapJob needs a face")
        chosen = media if media is not None else image
        assert chosen is not None
        self.__attrs_init__(chosen, face, hd, kind, id=id, key=key)

    @property
    def image(self) -> UploadSource:
        """Alias of ``media``: the image or video to edit."""
        return self.media


#: What ``swap_many`` accepts: SwapJobs from a list, a generator, or an async iterable.
Jobs = Iterable[SwapJob] | AsyncIterable[SwapJob]


@attrs.frozen(kw_only=True)
class SwapOutcome:
    """How one job ended: ``result`` or ``error`` (exactly one is set)."""

    job: SwapJob
    #: The swapped image or video, or None when the job failed.
    result: SwapResult | None = None
    #: The typed error, or None when the job succeeded.
    error: MioCreateError | None = None
    #: The server's task, once it was created (also on most failures: wait for it again).
    task_id: int | None = None
    #: The job's position in ``jobs``, from 0.
    index: int = 0
    #: The outcome came from the journal, or from a task an earlier run created.
    resumed: bool = False
    #: The job's id in the journal (None without one).
    job_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> SwapResult:
        """The result, or raise the error."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


# --- events, for progress displays -------------------------------------------------------------


@attrs.frozen
class UploadProgress:
    """Bytes of an upload went out. A source shared by several jobs (the face) is uploaded once,
    so its progress is reported once, not per job."""

    source: UploadSource = attrs.field(repr=_short_repr)
    file_name: str
    done: int
    total: int | None


@attrs.frozen
class TaskCreated:
    """The job's task was created on the server."""

    index: int
    job: SwapJob
    task_id: int


@attrs.frozen
class TaskPolled:
    """The shared poller read the job's task; it may have ended."""

    index: int
    job: SwapJob
    task_id: int
    status: TaskStatus


@attrs.frozen
class JobDone:
    """The job ended; its outcome is about to be handed out."""

    outcome: SwapOutcome


#: What ``swap_many(events=...)`` is called with.
BatchEvent = UploadProgress | TaskCreated | TaskPolled | JobDone


def _positive_or_none(_: object, attribute: Any, value: Any) -> None:
    if value is not None:
        check_timeout(value, attribute.name)


def _poll_or_none(_: object, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, PollPolicy):
        raise InvalidInputError(f"{attribute.name} must be a PollPolicy, got {value!r}")


def _journal_or_none(value: str | os.PathLike[str] | Journal | None) -> Journal | None:
    return None if value is None else as_journal(value)


#: Connection failures in a row, with no reply between them, after which a batch gives up on
#: the service (``swap_many(..., unreachable_after=...)``). With the default retry policy (5
#: attempts per request, backoff to 8 s), that is two requests given up on: seconds, not hours.
UNREACHABLE_AFTER = 10


@attrs.frozen(kw_only=True)
class SwapOptions:
    """The options of ``swap_many``, checked once (see ``MioCreate.swap_many``)."""

    concurrency: int = attrs.field(default=16, validator=at_least(1, error=InvalidInputError))
    fail_fast: bool = False
    #: Each job's deadline; None: ``IMAGE_TIMEOUT`` or ``VIDEO_TIMEOUT`` by its kind.
    timeout: float | None = attrs.field(default=None, validator=_positive_or_none)
    max_submissions: int = attrs.field(default=8, validator=at_least(1, error=InvalidInputError))
    #: None: the client's ``config.poll``.
    poll: PollPolicy | None = attrs.field(default=None, validator=_poll_or_none)
    upload_cache_size: int = attrs.field(
        default=1024, validator=at_least(0, error=InvalidInputError)
    )
    #: A path (a SQLite journal) or a ``Journal``.
    journal: Journal | None = attrs.field(default=None, converter=_journal_or_none)
    #: Send again a creation that may have reached the service (it may pay twice).
    resubmit_uncertain: bool = attrs.field(default=False, validator=_bool)
    events: Callable[[BatchEvent], object] | None = None
    #: Connection failures in a row (no reply between them) after which the batch stops.
    unreachable_after: int = attrs.field(
        default=UNREACHABLE_AFTER, validator=at_least(1, error=InvalidInputError)
    )
    #: At most this many creations sent (uncertain ones count); the rest end with
    #: ``TaskBudgetError`` and stay to do. None: no budget.
    max_tasks: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(at_least(0, error=InvalidInputError))
    )
    #: The priority lane of the batch's jobs in the client's scheduler.
    lane: Lane = attrs.field(default="bulk", converter=check_lane)


@attrs.define
class BatchStats:
    """Counters of a batch, live while it runs."""

    jobs_started: int = 0
    tasks_created: int = 0
    outcomes_yielded: int = 0
    failures: int = 0
    uploads: int = 0
    upload_cache_hits: int = 0
    polls: int = 0


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    #: The block was left: nothing more comes.
    ENDED = "ended"
    #: Every outcome was handed out.
    EXHAUSTED = "exhausted"


class SwapResults:
    """The outcomes of ``swap_many``, in completion order; an async context manager.

    ``async with client.swap_many(jobs) as results: async for outcome in results: ...``.
    Leaving the block ends all work; ``pending_tasks()`` then lists the tasks that were created
    but whose outcome was not handed out, so that they can still be collected with ``wait``.
    """

    def __init__(self, batch: _Batch) -> None:
        self._batch = batch
        self._context: AbstractAsyncContextManager[None] | None = None
        self._receive: ObjectReceiveStream[SwapOutcome | _Abort] | None = None
        self._state = _State.NEW

    @property
    def stats(self) -> BatchStats:
        batch = self._batch
        batch.stats.polls = batch.poller.polls
        batch.stats.uploads = batch.uploads.uploads
        batch.stats.upload_cache_hits = batch.uploads.hits
        return batch.stats

    # --- the block ----------------------------------------------------------------------------

    async def __aenter__(self) -> SwapResults:
        if self._state is not _State.NEW:
            raise RuntimeError("a SwapResults is entered once; call swap_many() again")
        self._state = _State.RUNNING
        try:
            await self._batch.journal.open()
        except BaseException:
            self._state = _State.ENDED
            raise
        self._context = self._run()
        # The batch's tasks start here, and inherit the name of the call: the client's methods
        # they use name no error after themselves (the outcome says "swap_many").
        token = CALLED.set("swap_many")
        try:
            await self._context.__aenter__()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._batch.journal.close()
            raise
        finally:
            CALLED.reset(token)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._context is not None
        return await self._context.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        send, self._receive = anyio.create_memory_object_stream[SwapOutcome | _Abort](
            self._batch.options.concurrency
        )
        caught: BaseException | None = None
        try:
            async with anyio.create_task_group() as group:
                self._batch.start(group, send)
                try:
                    yield
                except anyio.get_cancelled_exc_class():
                    raise  # cancellation is the task group's own business
                except BaseException as exc:
                    # Re-raised below, outside the task group, so it is not wrapped in a group:
                    # the caller's KeyboardInterrupt or SystemExit stays itself.
                    caught = exc
                finally:
                    group.cancel_scope.cancel()
        finally:
            self._state = _State.ENDED
            self._receive.close()
            with anyio.CancelScope(shield=True):
                await self._batch.journal.close()
        if caught is not None:
            raise caught

    # --- the outcomes -------------------------------------------------------------------------

    def __aiter__(self) -> SwapResults:
        return self

    async def __anext__(self) -> SwapOutcome:
        if self._state is _State.NEW:
            raise RuntimeError("iterate inside `async with client.swap_many(jobs) as results:`")
        if self._state is _State.EXHAUSTED:
            raise StopAsyncIteration
        if self._state is _State.ENDED or self._receive is None:
            raise RuntimeError("the batch has ended (its `async with` block was left)")
        try:
            item = await self._receive.receive()
        except anyio.EndOfStream:
            self._state = _State.EXHAUSTED
            raise StopAsyncIteration from None
        if isinstance(item, _Abort):
            raise item.error
        self._batch.handed_out(item)
        if item.error is not None and self._batch.options.fail_fast:
            raise item.error
        return item

    # --- what is left -------------------------------------------------------------------------

    def created_task_ids(self) -> list[int]:
        """Every task this batch created on the server, in creation order."""
        return list(self._batch.created)

    def pending_tasks(self) -> dict[int, SwapJob]:
        """Tasks created whose outcome was not handed out: ``{task_id: job}``.

        After leaving the block early, these may still be running or finished unseen:
        ``await client.wait(task_id)`` collects them (without paying again).
        """
        return dict(self._batch.pending)

    def uncertain_jobs(self) -> list[SwapJob]:
        """Jobs whose creation request may have reached the service without a usable reply
        (cut short, a garbled answer, or the block left while it was out): a task may exist.
        The API cannot list tasks, so sending them again risks paying twice."""
        return list(self._batch.uncertain)

    def summary(self) -> Summary:
        """Jobs counted by state (with a journal: its earlier runs' jobs too).

        ``summary().done``, ``.in_flight``, ``.uncertain``, ``.to_do``; ``summary()["failed"]``
        for one state; ``str(summary())`` is the line a resume prints.
        """
        return self._batch.journal.summary()

    async def mark_downloaded(self, outcome: SwapOutcome, path: str | os.PathLike[str]) -> None:
        """Record in the journal that ``outcome``'s result is saved at ``path``."""
        if outcome.job_id is not None and outcome.result is not None:
            await self._batch.journal.downloaded(outcome.job_id, path)


@attrs.frozen
class _Abort:
    """Raised from the iterator: the jobs iterable itself failed."""

    error: BaseException


def swap_many(
    client: BatchClient,
    jobs: Jobs,
    options: SwapOptions,
    *,
    put: Put,
    client_id: str | None = None,
    learnt: Learnt | None = None,
    failures: ConnectionFailures | None = None,
    scheduler: Scheduler | None = None,
) -> SwapResults:
    """See ``MioCreate.swap_many``; ``put`` is the client's streamed PUT, ``client_id`` names the
    account in a journal, ``learnt`` is what the client's poller learnt in earlier batches,
    ``failures`` is where the client's session reports connection failures in a row (the
    circuit breaker trips at ``options.unreachable_after``), ``scheduler`` is the client's
    (per-key limits and lanes, shared by every batch and one-call job of the client)."""
    if not isinstance(jobs, (Iterable, AsyncIterable)):
        raise TypeError(f"jobs must be an iterable of SwapJob, not {type(jobs).__name__}")
    if options.poll is None:
        options = attrs.evolve(options, poll=client.config.poll)
    return SwapResults(_Batch(client, put, jobs, options, client_id, learnt, failures, scheduler))


# --- the machinery ----------------------------------------------------------------------------


class _Batch:
    def __init__(
        self,
        client: BatchClient,
        put: Put,
        jobs: Jobs,
        options: SwapOptions,
        client_id: str | None = None,
        learnt: Learnt | None = None,
        failures: ConnectionFailures | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.client = client
        #: The budget (``max_tasks``) and the jobs' turns in the client's scheduler.
        self.turns: BatchTurns = BatchTurns(
            scheduler, lane=options.lane, max_tasks=options.max_tasks
        )
        self.failures: ConnectionFailures = (
            failures if failures is not None else ConnectionFailures()
        )
        #: Set when the circuit breaker trips: nothing more is submitted.
        self.unreachable: ServiceUnreachableError | None = None
        self.jobs = jobs
        self.options = options
        assert options.poll is not None
        self.poller: Poller = Poller(client, options.poll, learnt)
        self.stats: BatchStats = BatchStats()
        self.events: Callable[[BatchEvent], object] | None = options.events
        self.uploads: UploadCache = UploadCache(
            put,
            size=options.upload_cache_size,
            progress=self._upload_progress if self.events else None,
            stall_timeout=client.config.stall_timeout,
            config=client.config,
        )
        self.submissions: anyio.CapacityLimiter = anyio.CapacityLimiter(options.max_submissions)
        # A list, not a fixed-width array: task ids may be of any size.
        self.created: list[int] = []
        self.pending: dict[int, SwapJob] = {}
        self.uncertain: list[SwapJob] = []
        #: Set by the first 801: nothing more is submitted.
        self.out_of_credits: InsufficientCreditsError | None = None
        self.journal: BatchJournal = BatchJournal(
            options.journal,
            client=client,
            client_id=client_id,
            resubmit_uncertain=options.resubmit_uncertain,
        )
        #: Jobs read from ``jobs`` so far.
        self.fed: int = 0

    def start(
        self, group: TaskGroup, outcomes: MemoryObjectSendStream[SwapOutcome | _Abort]
    ) -> None:
        send_jobs, receive_jobs = anyio.create_memory_object_stream[_Admitted](0)
        with receive_jobs:
            for _ in range(self.options.concurrency):
                group.start_soon(self._worker, receive_jobs.clone(), outcomes.clone())
        group.start_soon(self._feed, send_jobs, outcomes)
        group.start_soon(self.poller.run)

    def _upload_progress(
        self, source: UploadSource, prepared: PreparedUpload
    ) -> ProgressCallback | None:
        events = self.events
        if events is None:
            return None

        def report(done: int, total: int | None) -> None:
            events(UploadProgress(source, prepared.file_name, done, total))

        return report

    def handed_out(self, outcome: SwapOutcome) -> None:
        self.stats.outcomes_yielded += 1
        if outcome.task_id is not None:
            self.pending.pop(outcome.task_id, None)

    async def _feed(
        self,
        send: ObjectSendStream[_Admitted],
        outcomes: ObjectSendStream[SwapOutcome | _Abort],
    ) -> None:
        # With a journal, jobs are admitted a few at a time (one query for all of them).
        size = self.options.concurrency if self.journal.enabled else 1
        chunk: list[tuple[int, SwapJob]] = []
        async with send, outcomes:
            try:
                if isinstance(self.jobs, AsyncIterable):
                    async for job in self.jobs:
                        chunk.append((len(chunk) + self.fed, _checked(job)))
                        if len(chunk) >= size:
                            await self._admit(chunk, send, outcomes)
                else:
                    # A list of many keys' jobs is read in turns of its keys (the indexes stay).
                    for index, job in in_turns_of_keys(self.jobs):
                        chunk.append((index, _checked(job)))
                        if len(chunk) >= size:
                            await self._admit(chunk, send, outcomes)
                await self._admit(chunk, send, outcomes)
            except Exception as exc:
                # The caller's iterable broke (or held something else than a SwapJob): the
                # iterator raises it, in the caller's task.
                await outcomes.send(_Abort(exc))

    async def _admit(
        self,
        chunk: list[tuple[int, SwapJob]],
        send: ObjectSendStream[_Admitted],
        outcomes: ObjectSendStream[SwapOutcome | _Abort],
    ) -> None:
        """Hand the jobs to the workers; those the journal says are finished end here."""
        admitted = await self.journal.admit(chunk) if chunk else []
        for (index, job), entry in zip(chunk, admitted, strict=True):
            if isinstance(entry, MioCreateError):
                self.stats.failures += 1
                await outcomes.send(SwapOutcome(job=job, error=entry, index=index))
            elif entry.action is Action.DONE:
                if entry.error is not None:
                    self.stats.failures += 1
                await outcomes.send(_outcome(job, index, entry))
            else:
                await send.send((index, job, entry))
        self.fed += len(chunk)
        chunk.clear()

    async def _worker(
        self,
        jobs: ObjectReceiveStream[_Admitted],
        outcomes: ObjectSendStream[SwapOutcome | _Abort],
    ) -> None:
        async with jobs, outcomes:
            async for index, job, entry in jobs:
                self.stats.jobs_started += 1
                running = _Job(self, index, job, entry)
                outcome = await self.turns.run(running.held, running.run_safely, _spent)
                if outcome.error is not None:
                    self.stats.failures += 1
                if self.events is not None:
                    _tell(self.events, JobDone(outcome))
                await outcomes.send(outcome)

    def service_unreachable(
        self, cause: ConnectError | None = None
    ) -> ServiceUnreachableError | None:
        """The error a job gets instead of being tried, once the circuit breaker tripped: the
        client saw ``unreachable_after`` connection failures in a row, no reply between them,
        or one that no retry can fix (``cause``, permanent: a wrong URL), whose fix it tells."""
        failures = self.failures.in_a_row
        why = cause.message if cause is not None and cause.permanent else None
        if self.unreachable is None and (why or failures >= self.options.unreachable_after):
            why = why or f"{failures} connection failures in a row"
            self.unreachable = ServiceUnreachableError(
                f"the service is unreachable: {why}; the "
                "batch stopped submitting (nothing was sent for this job: submit it again "
                "once the service is back)",
                operation="swap_many",
            )
        return None if self.unreachable is None else copy.copy(self.unreachable)

    def tripped(self) -> bool:
        """Whether the circuit breaker tripped (the session's creation retries stop at once)."""
        return self.service_unreachable() is not None

    def no_credits_left(self) -> InsufficientCreditsError | None:
        """The error a job gets instead of being submitted, once credits ran out."""
        first = self.out_of_credits
        if first is None:
            return None
        return InsufficientCreditsError(
            f"not submitted: the credits ran out ({first.message})",
            operation=first.operation,
            http_status=first.http_status,
        )


class _Job:
    """One job of the batch: the runner's ``Steps`` over its ``JobEntry`` (the SQLite journal,
    or none), and the batch's own books (created, pending and uncertain tasks, counters, events,
    the circuit breaker, credits running out)."""

    def __init__(self, batch: _Batch, index: int, job: SwapJob, entry: JobEntry) -> None:
        self.batch = batch
        self.index = index
        self.job = job
        self.entry = entry
        #: Its turn and budget unit (``max_tasks``), taken right before its creation.
        self.held = Held()
        task: TaskHandle[Any] | None = None
        if entry.action is Action.WAIT:
            assert entry.task_id is not None
            task = TaskHandle(entry.task_id, _TASK_KINDS[entry.kind == "video"])
        self.runner = Runner(
            self,
            batch.client,
            batch.client.config.retry,
            upload=self._upload,
            watch=self._watch,
            deadline=0.0,
            hd=job.hd,
            task=task,
            submissions=batch.submissions,
            resubmit_uncertain=batch.options.resubmit_uncertain,
            rerun_unsent=batch.service_unreachable,
            stop_retries=batch.tripped,
        )

    def _outcome(
        self, result: SwapResult | None = None, error: MioCreateError | None = None
    ) -> SwapOutcome:
        if self.runner.task is not None:
            self.entry.task_id = self.runner.task.id
        if error is not None:
            error.operation = "swap_many"
        self.entry.result, self.entry.error = result, error
        return _outcome(self.job, self.index, self.entry)

    async def run_safely(self) -> SwapOutcome:
        """``run()``, with any other exception made this job's typed error: one bad job (a
        stream that raises, a reply that breaks a parser) never sinks the batch."""
        # The job's id on the log records and errors of its calls.
        job = current_job.set(self.entry.job_id)
        try:
            with span("miocreate.job", kind=self.job.kind or "unknown") as current:
                outcome = await self.run()
                if outcome.task_id is not None:
                    current.set("task_id", outcome.task_id)
                if outcome.error is not None:  # the job's verdict, not an exception here
                    current.outcome = outcome_of(outcome.error)
                return outcome
        except Exception as exc:
            task = self.runner.task
            error = ProtocolError(
                f"the job failed unexpectedly: {type(exc).__name__}: {exc}",
                task_id=task.id if task is not None else None,
            )
            error.__cause__ = exc
            with contextlib.suppress(Exception):
                await self.entry.ended(error)
            return self._outcome(error=error)
        finally:
            current_job.reset(job)

    async def run(self) -> SwapOutcome:
        timeout = self.batch.options.timeout
        if timeout is None:
            # Until the upload tells an image from a video, the longer deadline; shortened then.
            timeout = IMAGE_TIMEOUT if self.job.kind == "image" else VIDEO_TIMEOUT
        self.runner.deadline = anyio.current_time() + timeout
        ended = await self.runner.run()
        if isinstance(ended, MioCreateError):
            return self._outcome(error=ended)
        return self._outcome(ended)

    # --- what the runner does here --------------------------------------------------------------

    async def _upload(self) -> Inputs:
        job, batch, runner = self.job, self.batch, self.runner
        with anyio.move_on_after(runner.remaining()) as scope:
            face_key, _ = await batch.uploads.key_of(job.face, video=False, role="face")
            want = None if job.kind is None else job.kind == "video"
            image_key, media = await batch.uploads.key_of(job.media, video=want, role="media")
        if scope.cancelled_caught:
            raise MioCreateTimeoutError(
                "the job's deadline passed while uploading", operation="upload"
            )
        is_video = want if want is not None else _is_video(image_key, media)
        if batch.options.timeout is None and job.kind is None and not is_video:
            runner.deadline -= VIDEO_TIMEOUT - IMAGE_TIMEOUT
        return Inputs(image_key, face_key, is_video)

    async def _watch(self, task: TaskHandle[Any]) -> TaskInfo[Any]:
        return await self.batch.poller.watch(task, on_poll=self._polled)

    def _polled(self, info: TaskInfo[Any]) -> None:
        if self.batch.events is not None:
            _tell(self.batch.events, TaskPolled(self.index, self.job, info.id, info.status))

    # --- the runner's Steps -----------------------------------------------------------------------

    async def begin(self) -> None:
        batch = self.batch
        stop = (
            batch.no_credits_left()
            or batch.service_unreachable()
            or batch.turns.refusal(self.held, self.job.key)
        )
        if stop is not None:
            raise stop

    async def uploaded(self) -> None:
        await self.entry.uploaded()

    async def intent(self, kind: JobKind) -> float | None:
        await self.begin()  # again: the credits may have run out during the uploads
        # Its turn, the batch's budget and its key's allowance: refused here, nothing is sent.
        await self.batch.turns.before_creation(self.held, self.job.key, until=self.runner.deadline)
        # The intent, durably on disk before the request: a crash now means uncertain.
        await self.entry.intent(kind)
        return None

    async def created(self, task: TaskHandle[Any]) -> None:
        # Paid: known to the batch before the journal write, which may fail (the outcome then
        # carries the task id, and the record stays "submitting").
        batch = self.batch
        batch.created.append(task.id)
        batch.pending[task.id] = self.job
        try:
            await self.entry.created(task.id)
        finally:
            # Counted once recorded (or once the record failed): the summary agrees with the
            # counter.
            batch.stats.tasks_created += 1
            if batch.events is not None:
                _tell(batch.events, TaskCreated(self.index, self.job, task.id))

    async def refused(self, error: MioCreateError) -> None:
        await self.entry.refused()

    async def uncertain(self, error: SubmissionUncertainError | None) -> None:
        # A task may exist; the API cannot list tasks to tell.
        self.batch.uncertain.append(self.job)
        if error is not None and self.batch.options.resubmit_uncertain:
            await self.entry.ended(error)  # recorded before it is sent again

    async def succeeded(self, result: SwapResult) -> SwapResult:
        return await self.entry.succeeded(result)

    async def ended(self, error: MioCreateError) -> None:
        creating = self.entry.state is JobState.SUBMITTING
        if (
            creating
            and isinstance(error, InsufficientCreditsError)
            and not self.batch.out_of_credits
        ):
            self.batch.out_of_credits = error  # the creation's 801: nothing more is submitted
        await self.entry.ended(error)


def _tell(events: Callable[[BatchEvent], object], event: BatchEvent) -> None:
    """Call the user's ``events`` callback; its failure is logged, never the batch's end."""
    try:
        events(event)
    except Exception:
        logger.exception("the swap_many events callback raised on %s", type(event).__name__)


_TASK_KINDS = {False: TaskKind.IMAGE_SWAP, True: TaskKind.VIDEO_SWAP}
#: A job handed to a worker: its index, the job, and its place in the journal.
_Admitted = tuple[int, SwapJob, JobEntry]


def _outcome(job: SwapJob, index: int, entry: JobEntry) -> SwapOutcome:
    error = entry.error
    missing_task = error is not None and error.task_id is None and entry.task_id is not None
    if error is not None and (missing_task or error.job_id != entry.job_id):
        # A copy: one error object may have reached several jobs (a refused token exchange).
        original, error = error, copy.copy(error)
        error.__cause__ = original.__cause__
        error.task_id = error.task_id if error.task_id is not None else entry.task_id
        error.job_id = entry.job_id
    return SwapOutcome(
        job=job,
        result=entry.result,
        error=error,
        task_id=entry.task_id,
        index=index,
        resumed=entry.resumed,
        job_id=entry.job_id,
    )


def _spent(outcome: SwapOutcome) -> bool:
    """Whether a job's creation was sent, or may have been (it counts against the budget)."""
    return outcome.task_id is not None or isinstance(outcome.error, SubmissionUncertainError)


def _checked(job: object) -> SwapJob:
    if not isinstance(job, SwapJob):
        raise TypeError(f"swap_many takes SwapJob items, got {type(job).__name__}")
    return job


def _is_video(key: str, media: MediaType | None) -> bool:
    video = media.is_video if media is not None else is_video_name(key)
    if video is None:
        raise InvalidInputError(
            f"cannot tell whether {key!r} is an image or a video: give the job a kind"
        )
    return video
