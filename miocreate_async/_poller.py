"""One poller for many tasks: a schedule of due polls and a few workers that send them.

Instead of a sleeping loop per task, every task in flight is an entry in one heap ordered by
when it is next due. One scheduler pops due entries and hands them to ``concurrency`` poll
workers, so the poll requests in flight stay bounded however many tasks there are.

The schedule, per kind of task (``adaptive``): while nothing is known of a kind, a task is polled
``first`` seconds after its creation, then at gaps growing with its age (``ratio`` of it, at most
two ``settle``). The poller learns from every reading: a task seen running at age *a* proves its
kind may take longer than *a*, and an ended one how long it took. A task is not polled before its
kind's quickest usual end (the ``quantile`` of the durations seen, or before any ended, the age
``learn_after`` tasks of the kind have been seen running at); past it, every ``settle`` seconds,
as evenly spaced polls see an end soonest for their number. The client keeps what was learnt
for its next batches.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import anyio
import attrs
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ._config import PollPolicy
from ._errors import MioCreateError, ProtocolError, task_failed_error
from ._models import TaskHandle, TaskInfo
from ._operations import TaskKind
from ._retry import is_transient

__all__ = ["KindDurations", "Learnt", "Poller", "TaskReader"]


class TaskReader(Protocol):
    """What the poller needs of the client: a task's status (``MioCreate.get_task``)."""

    async def get_task(self, task: TaskHandle[Any]) -> TaskInfo[Any]: ...


class KindDurations:
    """What one kind of task has shown: how long the ended ones took, and how long the ones
    still running have been seen running."""

    def __init__(self, keep: int = 256) -> None:
        self._ended: deque[float] = deque(maxlen=keep)
        self._shortest = math.inf
        self._cached: float | None = None
        self._fresh = 0
        #: Task id -> its age when last seen running, for the tasks in flight.
        self._running: dict[int, float] = {}

    def running(self, task_id: int, age: float) -> None:
        self._running[task_id] = age

    def ended(self, task_id: int, seconds: float) -> None:
        self._running.pop(task_id, None)
        seconds = max(0.0, seconds)
        self._ended.append(seconds)
        self._shortest = min(self._shortest, seconds)
        self._fresh += 1

    def typical(self) -> float | None:
        """The median duration of the ended tasks (None before any ended): an estimate's."""
        if not self._ended:
            return None
        ordered = sorted(self._ended)
        return ordered[len(ordered) // 2]

    def forget(self, task_id: int) -> None:
        """The task is no longer watched (abandoned): it proves nothing more."""
        self._running.pop(task_id, None)

    def quick_end(self, q: float, enough: int) -> tuple[float | None, bool]:
        """The quickest usual duration (None: unknown), and whether an ended task showed it
        (rather than running tasks alone, which only say it is at least that)."""
        enough = max(1, enough)
        if len(self._ended) >= enough:
            # Sorting 256 floats is cheap, but not for every poll: refresh now and then.
            if self._cached is None or self._fresh >= 16:
                ordered = sorted(self._ended)
                self._cached = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
                self._fresh = 0
            return self._cached, True
        survived = math.inf
        if len(self._running) >= enough:
            survived = heapq.nlargest(enough, self._running.values())[-1]
        if self._ended:
            return min(self._shortest, survived), True
        return (None if survived == math.inf else survived), False


#: What a client has learnt of each kind of task, kept from one batch to the next.
Learnt = dict[TaskKind, KindDurations]


@attrs.define(eq=False)
class _Watch:
    handle: TaskHandle[Any]
    created: float
    #: When the task was last seen unfinished (its creation at first).
    seen_pending: float
    done: anyio.Event = attrs.Factory(anyio.Event)
    polls: int = 0
    #: The waiter went away (deadline, cancellation): drop the entry when it comes up.
    abandoned: bool = False
    info: TaskInfo[Any] | None = None
    error: MioCreateError | None = None
    on_poll: Callable[[TaskInfo[Any]], object] | None = None

    def finish(self, info: TaskInfo[Any] | None, error: MioCreateError | None) -> None:
        self.info, self.error = info, error
        self.done.set()


class Poller:
    """Watches every task of a batch; ``run()`` in a task group, ``await watch(task)``."""

    def __init__(
        self, client: TaskReader, policy: PollPolicy, learnt: Learnt | None = None
    ) -> None:
        self._client = client
        self.policy = policy
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._wakeup: anyio.Event | None = None
        self._durations: Learnt = {} if learnt is None else learnt
        #: Poll requests answered, for statistics.
        self.polls: int = 0

    async def watch(
        self, task: TaskHandle[Any], *, on_poll: Callable[[TaskInfo[Any]], object] | None = None
    ) -> TaskInfo[Any]:
        """Wait for ``task`` to end: its info once it succeeded; TaskFailedError otherwise.

        ``on_poll`` hears of every reading of the task (for progress displays).
        """
        now = anyio.current_time()
        entry = _Watch(task, created=now, seen_pending=now, on_poll=on_poll)
        self._push(now + self._first_delay(task.kind), entry)
        try:
            await entry.done.wait()
        finally:
            entry.abandoned = True
            self._kind(task.kind).forget(task.id)
        if entry.error is not None:
            raise entry.error
        assert entry.info is not None
        return entry.info

    async def run(self) -> None:
        """Schedule and send polls until cancelled."""
        send, receive = anyio.create_memory_object_stream[_Watch](0)
        async with anyio.create_task_group() as group:
            for _ in range(self.policy.concurrency):
                group.start_soon(self._poll_worker, receive.clone())
            receive.close()
            async with send:
                await self._schedule(send)

    # --- the schedule -------------------------------------------------------------------------

    def _kind(self, kind: TaskKind) -> KindDurations:
        durations = self._durations.get(kind)
        if durations is None:
            durations = self._durations[kind] = KindDurations()
        return durations

    def _usual_end(self, kind: TaskKind) -> tuple[float | None, bool]:
        """The quickest usual duration of this kind of task (with ``adaptive``), and whether
        an ended task showed it."""
        policy = self.policy
        if not policy.adaptive:
            return None, False
        return self._kind(kind).quick_end(policy.quantile, policy.learn_after)

    def _first_delay(self, kind: TaskKind) -> float:
        usual, _ = self._usual_end(kind)
        return self.policy.first if usual is None else max(self.policy.minimum, usual)

    def _next_poll(self, entry: _Watch) -> float:
        now = anyio.current_time()
        age = now - entry.created
        policy = self.policy
        usual, ended = self._usual_end(entry.handle.kind)
        if usual is not None and age + policy.minimum < usual:
            # Its kind takes longer than this: nothing to see before the quickest usual end.
            return entry.created + usual
        if ended:
            return now + max(policy.minimum, min(policy.settle, policy.maximum))
        return now + policy.gap(age)

    def _push(self, due: float, entry: _Watch) -> None:
        heapq.heappush(self._heap, (due, next(self._order), entry))
        if self._heap[0][2] is entry and self._wakeup is not None:
            self._wakeup.set()

    async def _sleep_until_due(self, delay: float | None) -> None:
        self._wakeup = anyio.Event()
        with anyio.move_on_after(delay):
            await self._wakeup.wait()

    async def _schedule(self, send: ObjectSendStream[_Watch]) -> None:
        heap = self._heap
        while True:
            while heap and heap[0][2].abandoned:
                heapq.heappop(heap)
            if not heap:
                await self._sleep_until_due(None)
                continue
            delay = heap[0][0] - anyio.current_time()
            if delay > 0:
                await self._sleep_until_due(delay)
                continue
            _, _, entry = heapq.heappop(heap)
            await send.send(entry)

    # --- the polls ----------------------------------------------------------------------------

    async def _poll_worker(self, receive: ObjectReceiveStream[_Watch]) -> None:
        async with receive:
            async for entry in receive:
                if not entry.abandoned:
                    await self._poll(entry)

    async def _poll(self, entry: _Watch) -> None:
        sent = anyio.current_time()
        try:
            info = await self._client.get_task(entry.handle)
        except MioCreateError as error:
            if is_transient(error):
                # The session's retries gave up for now; the task goes on: look again later.
                self._push(self._next_poll(entry), entry)
            else:
                entry.finish(None, error)
            return
        except Exception as exc:
            # A reply that broke a parser fails this task, never the poller (and the batch).
            failure = ProtocolError(
                f"reading the task failed: {type(exc).__name__}: {exc}", task_id=entry.handle.id
            )
            failure.__cause__ = exc
            entry.finish(None, failure)
            return
        self.polls += 1
        entry.polls += 1
        if entry.on_poll is not None:
            entry.on_poll(info)
        kind = self._kind(entry.handle.kind)
        if not info.done:
            entry.seen_pending = sent
            kind.running(entry.handle.id, sent - entry.created)
            self._push(self._next_poll(entry), entry)
            return
        # It ended between the last poll that saw it running and this one: take the middle.
        kind.ended(entry.handle.id, (entry.seen_pending + sent) / 2 - entry.created)
        if info.succeeded:
            entry.finish(info, None)
        else:
            entry.finish(
                None,
                task_failed_error(
                    info.status_code,
                    info.message,
                    operation="swap_many",
                    task_id=info.id,
                    request_id=info.request_id,
                ),
            )
