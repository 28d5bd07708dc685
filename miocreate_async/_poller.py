"""One poller for many tasks: a schedule of due polls and a few workers that send them.

Instead of a sleeping loop per task, every task in flight is an entry in one heap ordered by
when it is next due. One scheduler pops due entries and hands them to ``concurrency`` poll
workers, so the poll requests in flight stay bounded however many tasks there are.

The schedule: a task is first polled ``first`` seconds after it was created; after that the gap
between polls grows with the task's age (``ratio`` of it), between ``minimum`` and ``maximum``.
With ``adaptive``, the poller learns how long each kind of task takes and polls a new task of
that kind first just before the quickest usual end instead, which skips the useless early polls.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import anyio
import attrs
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ._config import PollPolicy
from ._errors import MioCreateError, TaskFailedError
from ._models import TaskHandle, TaskInfo
from ._operations import TaskKind
from ._retry import is_transient

__all__ = ["PollPolicy", "Poller", "TaskReader"]


class TaskReader(Protocol):
    """What the poller needs of the client: a task's status (``MioCreate.get_task``)."""

    async def get_task(self, task: TaskHandle[Any]) -> TaskInfo[Any]: ...


class _Durations:
    """The recent durations of one kind of task, and a low quantile of them."""

    def __init__(self, keep: int = 256) -> None:
        self._samples: deque[float] = deque(maxlen=keep)
        self._cached: float | None = None
        self._fresh = 0

    def add(self, seconds: float) -> None:
        self._samples.append(max(0.0, seconds))
        self._fresh += 1

    def quantile(self, q: float, minimum_samples: int) -> float | None:
        if len(self._samples) < max(1, minimum_samples):
            return None
        # Sorting 256 floats is cheap, but not for every task created: refresh now and then.
        if self._cached is None or self._fresh >= 16:
            ordered = sorted(self._samples)
            self._cached = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
            self._fresh = 0
        return self._cached


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

    def __init__(self, client: TaskReader, policy: PollPolicy) -> None:
        self._client = client
        self.policy = policy
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._wakeup: anyio.Event | None = None
        self._durations: dict[TaskKind, _Durations] = {}
        #: Poll requests answered, for statistics.
        self.polls = 0

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

    def _usual_end(self, kind: TaskKind) -> float | None:
        """The quickest usual duration of this kind of task, once learnt (with ``adaptive``)."""
        policy = self.policy
        durations = self._durations.get(kind) if policy.adaptive else None
        return durations.quantile(policy.quantile, policy.learn_after) if durations else None

    def _first_delay(self, kind: TaskKind) -> float:
        usual = self._usual_end(kind)
        return self.policy.first if usual is None else max(self.policy.minimum, usual)

    def _next_poll(self, entry: _Watch) -> float:
        now = anyio.current_time()
        age = now - entry.created
        gap = self.policy.gap(age)
        usual = self._usual_end(entry.handle.kind)
        if usual is not None and age >= usual:
            gap = min(gap, max(self.policy.minimum, self.policy.settle))
        return now + gap

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
        self.polls += 1
        entry.polls += 1
        if entry.on_poll is not None:
            entry.on_poll(info)
        if not info.done:
            entry.seen_pending = sent
            self._push(self._next_poll(entry), entry)
            return
        # It ended between the last poll that saw it running and this one: take the middle.
        ended = (entry.seen_pending + sent) / 2
        self._durations.setdefault(entry.handle.kind, _Durations()).add(ended - entry.created)
        if info.succeeded:
            entry.finish(info, None)
        else:
            entry.finish(None, TaskFailedError.of_task(info.id, info.status_code, info.message))
