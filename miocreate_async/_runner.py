"""One paid job's life, written once: upload, intent, create, wait, record.

::

    Runner.run()
      steps.begin()                  may the job spend anything? (no credits, breaker, draining)
      upload()                       the inputs' keys (the batch's cache; a worker's shared one)
      steps.uploaded()
      create()                       THE at-most-once rule (see its docstring)
        steps.intent(kind)           recorded durably before the request; may refuse it
        client.create_*_swap(...)    -> steps.created / refused / uncertain
      watch(task)                    until the task ends or the job's deadline passes
      steps.succeeded(result)  or  steps.ended(error)

``swap_many`` (``_batch``: the SQLite journal, or none), the distributed worker
(``distributed._steps``: the fenced Redis journal) and the one-call jobs (``MioCreate.swap_image``
and ``swap_video``, which ``miocreate swap`` runs too: nothing durable) run it; each gives its
own ``Steps`` and its own ways to upload and to watch. Downloads are not part of it: the caller
saves the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Literal, Protocol

import anyio
import attrs

from ._errors import (
    ConnectError,
    MioCreateError,
    NotSentError,
    ServiceUnreachableError,
    SubmissionUncertainError,
    TaskTimeoutError,
)
from ._models import ImageSwapResult, TaskHandle, TaskInfo, VideoSwapResult
from ._retry import RetryPolicy, refused_without_effect
from ._telemetry import span

__all__ = ["Creator", "Inputs", "JobKind", "Released", "Runner", "Steps", "SwapResult"]

JobKind = Literal["image", "video"]
SwapResult = ImageSwapResult | VideoSwapResult


class Released(Exception):
    """The job left this runner without an outcome: it went back to be run by someone else (a
    draining worker, a lease too short to send). Raised by a ``Steps`` method; not an error."""


class Steps(Protocol):
    """Where a job's life is recorded, one method per step; the runner calls them in order.

    A method that must stop the job raises: a ``MioCreateError`` ends it with that error (then
    ``ended`` records it), ``Released`` hands it back unfinished.
    """

    async def begin(self) -> None:
        """Before anything is spent (uploads): raise what stops the job (credits ran out, the
        service is unreachable, the worker drains)."""

    async def uploaded(self) -> None:
        """The inputs are uploaded (free to redo)."""

    async def intent(self, kind: JobKind) -> float | None:
        """Right before the creation request: record the intent durably, or raise the typed
        refusal that keeps it from being sent (credits ran out, a ``max_tasks`` budget used up,
        the worker drains). Returns the request's ``send_by`` moment (``time.monotonic()``), or
        None when it may go whenever."""

    async def created(self, task: TaskHandle[Any]) -> None:
        """The creation's reply came: the task exists and is paid for. Record its id."""

    async def refused(self, error: MioCreateError) -> None:
        """The creation provably created nothing (refused, or not sent): back to be sent."""

    async def uncertain(self, error: SubmissionUncertainError | None) -> None:
        """The creation may have reached the service with no usable reply; None: this job was
        cancelled while its request was out (nothing can be awaited then: record nothing, the
        intent stays, which a later run reads as uncertain)."""

    async def succeeded(self, result: SwapResult) -> SwapResult:
        """Record the result; returns it as the caller hands it out."""

    async def ended(self, error: MioCreateError) -> None:
        """The job ended with ``error``: record what it means for a later run."""


class Creator(Protocol):
    """What the runner uses of the client (``MioCreate``)."""

    async def create_image_swap(
        self,
        image_key: str,
        face_key: str,
        *,
        hd: bool = False,
        send_by: float | None = None,
        retry_until: float | None = None,
        stop_retries: Callable[[], bool] | None = None,
    ) -> TaskHandle[ImageSwapResult]: ...

    async def create_video_swap(
        self,
        video_key: str,
        face_key: str,
        *,
        hd: bool = False,
        send_by: float | None = None,
        retry_until: float | None = None,
        stop_retries: Callable[[], bool] | None = None,
    ) -> TaskHandle[VideoSwapResult]: ...


@attrs.frozen
class Inputs:
    """The uploaded inputs of a job."""

    media_key: str
    face_key: str
    video: bool


@attrs.define(eq=False)
class Runner:
    """One job, from its uploads (or from its task, when an earlier run created it) to its
    recorded end, against its own deadline (an ``anyio.current_time()`` moment)."""

    steps: Steps
    client: Creator
    retry: RetryPolicy
    #: Uploads the job's inputs (may move ``deadline`` once it tells an image from a video).
    upload: Callable[[], Awaitable[Inputs]]
    #: Waits for the task to end; its info then (a failed task raises).
    watch: Callable[[TaskHandle[Any]], Awaitable[TaskInfo[Any]]]
    deadline: float
    hd: bool = False
    #: The task, once created (or given: an earlier run created it).
    task: TaskHandle[Any] | None = None
    #: Bounds the creation requests in flight (a batch's ``max_submissions``).
    submissions: AbstractAsyncContextManager[Any] = attrs.field(factory=nullcontext)
    #: Send again, by the user's choice, a creation that may have reached the service.
    resubmit_uncertain: bool = False
    #: Whether the session's own retries of refusals stop at the job's deadline too (a worker's
    #: go back through its journal instead: each new try is a new intent).
    retries_until_deadline: bool = True
    #: With a connection failure before a task exists, the error that stops the job (a tripped
    #: circuit breaker), or None to run the job again while time is left. None: it ends the job.
    rerun_unsent: Callable[[ConnectError], MioCreateError | None] | None = None
    #: Whether retries of the creation (the runner's and the session's) must stop now: a
    #: tripped circuit breaker, where each retry would only delay the verdict.
    stop_retries: Callable[[], bool] | None = None
    #: Whether the runner itself sends a refused creation again, until the deadline. The
    #: one-call jobs leave refusals to the session's own attempts (their ``timeout`` is the
    #: wait's alone).
    retry_refusals: bool = True
    #: Whether ``watch`` bounds itself, counted from the task's creation, with its own span and
    #: message (the one-call jobs' ``client.wait``): then the job's deadline does not cut it.
    watch_bounded: bool = False

    def remaining(self) -> float:
        return self.deadline - anyio.current_time()

    async def run(self) -> SwapResult | MioCreateError:
        """The job's result, or the error it ended with (both recorded by ``steps``).
        ``Released`` and exceptions that are no ``MioCreateError`` go through."""
        while True:
            try:
                if self.task is None:
                    await self.steps.begin()
                    inputs = await self.upload()
                    await self.steps.uploaded()
                    self.task = await self.create(inputs)
                return await self.steps.succeeded(await self.wait())
            except ConnectError as error:
                # Nothing was sent: the job may run again, unless the service seems down.
                failure: MioCreateError = error
                if self.rerun_unsent is not None:
                    stop = self.rerun_unsent(error)
                    if stop is None and self.task is None and self.remaining() > 0:
                        continue
                    failure = stop or error
                await self.steps.ended(failure)
                return failure
            except MioCreateError as error:
                await self.steps.ended(error)
                return error

    async def create(self, inputs: Inputs) -> TaskHandle[Any]:
        """Create the job's task, at most once. The rule, all of it here:

        - The intent is recorded durably before the request goes (``steps.intent``); a crash
          from then on leaves the job "submitting", which the next run reads as uncertain.
        - A creation is sent again only when the try before it provably created nothing: the
          service refused it without effect (802, 429, no connection: ``refused_without_effect``;
          tried again until the deadline), or it was not sent at all (``NotSentError``: a
          worker's lease ran short; its steps hand the job back). Both go to ``steps.refused``.
        - A doubt (the request may have reached the service, no usable reply: a
          ``SubmissionUncertainError``) is sent again only by the user's explicit choice
          (``resubmit_uncertain``, which may pay twice), and not endlessly.
        - Any other error (an error code the service answered with, a typed refusal of
          ``steps.intent``) ends the job (``steps.ended``): not sent again in this run.
        - A cancellation while the request is out is a doubt too (``steps.uncertain(None)``).
        - Once a creation reply came (``steps.created``), the record never goes back to
          pending: whatever fails after it (the journal write, a cancellation) leaves the job
          at least "submitting", and the task id travels with its outcome.
        """
        doubts = 0

        def again(error: MioCreateError) -> bool:
            nonlocal doubts
            if isinstance(error, ServiceUnreachableError):
                return False  # the circuit breaker tripped: no more tries
            if self.resubmit_uncertain and isinstance(error, SubmissionUncertainError):
                doubts += 1
                return doubts < self.retry.attempts
            return self.retry_refusals and refused_without_effect(error)

        kind: JobKind = "video" if inputs.video else "image"
        create = self.client.create_video_swap if inputs.video else self.client.create_image_swap
        retrying = self.retry.retrying(
            on=again, until=self.deadline, what="task creation", stop=self.stop_retries
        )
        async for attempt in retrying:
            with attempt:
                async with self.submissions:
                    send_by = await self.steps.intent(kind)
                    try:
                        task: TaskHandle[Any] = await create(
                            inputs.media_key,
                            inputs.face_key,
                            hd=self.hd,
                            send_by=send_by,
                            retry_until=self.deadline if self.retries_until_deadline else None,
                            stop_retries=self.stop_retries,
                        )
                    except SubmissionUncertainError as error:
                        await self.steps.uncertain(error)  # a task may exist: never silently
                        raise
                    except MioCreateError as error:
                        if isinstance(error, NotSentError) or refused_without_effect(error):
                            await self.steps.refused(error)
                        raise
                    except anyio.get_cancelled_exc_class():
                        await self.steps.uncertain(None)
                        raise
                    # Paid: the task is the job's before the record, which may fail.
                    self.task = task
                    await self.steps.created(task)
        assert self.task is not None
        return self.task

    async def wait(self) -> SwapResult:
        """The task's result, once it succeeded (a failed task raises its error)."""
        task = self.task
        assert task is not None
        if self.watch_bounded:
            info = await self.watch(task)
        else:
            with (
                span("miocreate.wait", task_id=task.id),
                anyio.move_on_after(self.remaining()) as s,
            ):
                info = await self.watch(task)
            if s.cancelled_caught:
                raise TaskTimeoutError(
                    "the job's deadline passed before the task ended; it may still finish: "
                    "wait for it again",
                    task_id=task.id,
                )
        result: SwapResult | None = info.result
        assert result is not None  # a succeeded task always has one (or get_task raised)
        return result
