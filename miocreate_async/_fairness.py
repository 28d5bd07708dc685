"""Fairness on one client: per-key limits and two priority lanes, for apps that serve many users.

::

    a job (key, lane) -> [allowance: refused at once when the key's is used up]
                      -> [a turn: waits while the client's ``slots`` or the key's
                          ``concurrency`` are taken; interactive waiters first, then bulk;
                          within a lane, the key with the fewest tasks in progress first]
                      -> its creation is sent (through the client's rate limit, as any request)
                      -> the turn ends with the job: the allowance keeps what was spent

One ``Scheduler`` per client (``MioCreate(fairness=Fairness(...))``): every ``swap_many`` and
every one-call job of that client take their turns from it, so one user's flood of 200 jobs
cannot hold back another's 5. A key's allowance counts only creations actually sent (and the
uncertain ones, which may have been paid): a refusal before sending, or one the service answered
without creating anything, gives the allowance back.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, Literal, TypeVar

import anyio
import attrs

from ._checks import at_least
from ._errors import (
    AllowanceExceededError,
    InvalidInputError,
    MioCreateTimeoutError,
    TaskBudgetError,
)

__all__ = [
    "Allowance",
    "BatchTurns",
    "Fairness",
    "KeyLimits",
    "Lane",
    "Scheduler",
    "Turn",
    "in_turns_of_keys",
]

Outcome = TypeVar("Outcome")
T = TypeVar("T")

#: A priority lane: "interactive" (a user waits: one-call jobs) goes before "bulk" (swap_many).
Lane = Literal["interactive", "bulk"]
LANES: tuple[Lane, ...] = ("interactive", "bulk")


def check_lane(lane: object) -> Lane:
    if lane == "interactive":
        return "interactive"
    if lane == "bulk":
        return "bulk"
    raise InvalidInputError(f'lane must be "interactive" or "bulk", got {lane!r}')


def check_key(key: object) -> str | None:
    if key is not None and not isinstance(key, str):
        raise InvalidInputError(f"key must be a string or None, got {type(key).__name__}")
    return key


class Allowance:
    """At most ``limit`` units per key within ``window`` seconds (None: ever, for this object).

    ``take(key)`` counts one if there is room (else False); ``give_back(key)`` returns the last
    one taken (the swap it stood for was not made). The scheduler takes one per creation it lets
    through; a bot can also use one directly.
    """

    def __init__(
        self,
        limit: int,
        *,
        window: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(f"an allowance is a whole number >= 0, got {limit!r}")
        if window is not None and (not isinstance(window, (int, float)) or window <= 0):
            raise InvalidInputError(f"window must be a positive number of seconds, got {window!r}")
        self.limit: int = limit
        self.window: float | None = window
        self._clock = clock
        self._taken: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        taken = self._taken.setdefault(key, deque())
        if self.window is not None:
            since = self._clock() - self.window
            while taken and taken[0] <= since:
                taken.popleft()
        return taken

    def used(self, key: str) -> int:
        return len(self._recent(key))

    def remaining(self, key: str) -> int:
        return max(0, self.limit - self.used(key))

    def take(self, key: str) -> bool:
        taken = self._recent(key)
        if len(taken) >= self.limit:
            return False
        taken.append(self._clock())
        return True

    def give_back(self, key: str) -> None:
        taken = self._taken.get(key)
        if taken:
            taken.pop()


@attrs.frozen(kw_only=True)
class KeyLimits:
    """Limits of one key (a user of your app, a tenant): None is no limit."""

    #: Tasks of the key in progress at once (from its creation to the job's end).
    concurrency: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(at_least(1, error=InvalidInputError)),
    )
    #: Creations the key may send within ``window`` seconds (None: in the client's life).
    allowance: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(at_least(0, error=InvalidInputError)),
    )
    window: float | None = None


def _limits(_: object, attribute: Any, value: object) -> None:
    if not isinstance(value, KeyLimits):
        raise InvalidInputError(f"{attribute.name} must be a KeyLimits, got {value!r}")


def _keys(_: object, attribute: Any, value: object) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(limits, KeyLimits) for key, limits in value.items()
    ):
        raise InvalidInputError(f"{attribute.name} must map keys (str) to KeyLimits")


@attrs.frozen(kw_only=True)
class Fairness:
    """The client's fairness settings (``MioCreate(fairness=...)``).

    ``slots``: tasks in progress at once over every key (None: no limit; the lanes only order
    jobs when they must wait for a slot or for their key). ``per_key``: the limits of every
    key; ``keys``: other limits for some keys. Jobs without a key have no per-key limits.
    """

    slots: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(at_least(1, error=InvalidInputError))
    )
    per_key: KeyLimits = attrs.field(factory=KeyLimits, validator=_limits)
    keys: Mapping[str, KeyLimits] = attrs.field(factory=dict, validator=_keys)

    def limits(self, key: str | None) -> KeyLimits:
        if key is None:
            return _NO_LIMITS
        return self.keys.get(key, self.per_key)


_NO_LIMITS = KeyLimits()


@attrs.define(eq=False)
class Turn:
    """A job's turn: held from before its creation until the job ends."""

    key: str | None
    lane: Lane
    #: Whether the allowance counted this job (given back unless ``spent``).
    counted: bool = False
    #: A creation was sent, or may have been: the allowance keeps it.
    spent: bool = False
    granted: bool = False
    released: bool = False
    event: anyio.Event = attrs.Factory(anyio.Event)


class Scheduler:
    """The client-wide scheduler of turns (see the module's docstring)."""

    def __init__(self, fairness: Fairness | None = None) -> None:
        self.fairness: Fairness = fairness or Fairness()
        self._allowances: dict[str | None, Allowance] = {}
        self._running: Counter[str | None] = Counter()
        self._total = 0
        self._waiting: dict[Lane, deque[Turn]] = {lane: deque() for lane in LANES}
        #: The keys in the order their turns were granted (for tests and displays).
        self.granted: deque[str | None] = deque(maxlen=10_000)

    def allowance(self, key: str | None) -> Allowance | None:
        """The allowance of ``key`` (None: it has none)."""
        limits = self.fairness.limits(key)
        if limits.allowance is None or key is None:
            return None
        found = self._allowances.get(key)
        if found is None:
            found = Allowance(limits.allowance, window=limits.window)
            self._allowances[key] = found
        return found

    def remaining(self, key: str) -> int | None:
        """Creations ``key`` may still send (None: no allowance)."""
        allowance = self.allowance(key)
        return None if allowance is None else allowance.remaining(key)

    def refusal(self, key: str | None) -> AllowanceExceededError | None:
        """The error a job of ``key`` would get now, its allowance used up (nothing counted)."""
        allowance = self.allowance(key)
        if allowance is None or key is None or allowance.remaining(key) > 0:
            return None
        window = "" if allowance.window is None else f" in {allowance.window:g}s"
        error = AllowanceExceededError(
            f"the allowance of key {key!r} ({allowance.limit} tasks{window}) is used up: "
            "not submitted"
        )
        error.key = key
        return error

    def _may_run(self, turn: Turn) -> bool:
        slots = self.fairness.slots
        if slots is not None and self._total >= slots:
            return False
        limit = self.fairness.limits(turn.key).concurrency
        return limit is None or self._running[turn.key] < limit

    def _grant(self, turn: Turn) -> None:
        turn.granted = True
        self._running[turn.key] += 1
        self._total += 1
        self.granted.append(turn.key)
        turn.event.set()

    def _dispatch(self) -> None:
        """Give free slots to waiters: interactive first; in a lane, the least busy key."""
        for lane in LANES:
            queue = self._waiting[lane]
            while queue:
                best: Turn | None = None
                for turn in queue:
                    if self._may_run(turn) and (
                        best is None or self._running[turn.key] < self._running[best.key]
                    ):
                        best = turn
                if best is None:
                    break
                queue.remove(best)
                self._grant(best)

    async def acquire(self, key: str | None, lane: Lane, *, deadline: float | None) -> Turn:
        """Wait for a turn (until ``deadline``, an ``anyio.current_time()`` moment) and count
        it against the key's allowance: ``AllowanceExceededError`` when it is used up,
        ``MioCreateTimeoutError`` when the deadline passes first (nothing sent either way)."""
        refusal = self.refusal(key)
        if refusal is not None:
            raise refusal
        turn = Turn(key, lane)
        self._waiting[lane].append(turn)
        self._dispatch()
        if not turn.granted:
            left = math.inf if deadline is None else deadline - anyio.current_time()
            try:
                with anyio.move_on_after(left):
                    await turn.event.wait()
            finally:
                if not turn.granted:
                    self._waiting[lane].remove(turn)
            if not turn.granted:
                raise MioCreateTimeoutError(
                    "the job's deadline passed while it waited for its turn (nothing was sent)"
                )
        # Counted once the turn is granted: the allowance may have run out meanwhile.
        allowance = self.allowance(key)
        if allowance is not None and key is not None:
            if not allowance.take(key):
                self.release(turn)
                refusal = self.refusal(key)
                assert refusal is not None
                raise refusal
            turn.counted = True
        return turn

    def release(self, turn: Turn) -> None:
        """The job ended: free its slot; give its allowance back unless it was ``spent``."""
        if turn.released:
            return
        turn.released = True
        if turn.granted:
            self._running[turn.key] -= 1
            self._total -= 1
        if turn.counted and not turn.spent and turn.key is not None:
            allowance = self.allowance(turn.key)
            if allowance is not None:
                allowance.give_back(turn.key)
        self._dispatch()


@attrs.define
class Held:
    """What one batch job holds: its turn, its unit of the batch's budget. Made by the job and
    handed to ``BatchTurns.run`` and ``before_creation`` (explicitly: no ambient state)."""

    turn: Turn | None = None
    budgeted: bool = False


class BatchTurns:
    """A batch's side of spending: its ``max_tasks`` budget, and its jobs' turns from the
    client's scheduler. ``run`` wraps a job; ``before_creation`` is called right before its
    creation is recorded and sent (again on each retry: it is taken once)."""

    def __init__(
        self, scheduler: Scheduler | None, *, lane: Lane = "bulk", max_tasks: int | None = None
    ) -> None:
        self.scheduler: Scheduler | None = scheduler
        self.lane: Lane = lane
        self.max_tasks: int | None = max_tasks
        self.budget: Allowance | None = None if max_tasks is None else Allowance(max_tasks)

    @property
    def spent(self) -> int:
        """Creations of this batch sent or on their way (its budget's count)."""
        return 0 if self.budget is None else self.budget.used("")

    async def run(
        self,
        held: Held,
        job: Callable[[], Awaitable[Outcome]],
        spent: Callable[[Outcome], bool],
    ) -> Outcome:
        """Run ``job``; then free its turn, and keep its budget and allowance only if
        ``spent(outcome)`` (a task was created or may have been: an exception counts)."""
        spent_it = True
        try:
            outcome = await job()
            spent_it = spent(outcome)
            return outcome
        finally:
            if held.budgeted and not spent_it and self.budget is not None:
                self.budget.give_back("")
            if held.turn is not None and self.scheduler is not None:
                held.turn.spent = spent_it
                self.scheduler.release(held.turn)

    def refusal(self, held: Held, key: str | None) -> TaskBudgetError | None:
        """The error a job would get now (budget or allowance used up), nothing counted: asked
        before its uploads too, so that a job sure to be refused spends no bandwidth."""
        if self.budget is not None and not held.budgeted and self.budget.remaining("") <= 0:
            return self._budget_error()
        if held.turn is None and self.scheduler is not None:
            return self.scheduler.refusal(key)
        return None

    async def before_creation(self, held: Held, key: str | None, *, until: float | None) -> None:
        """Wait for the job's turn, then count it: raises ``TaskBudgetError`` (the budget is
        used up), ``AllowanceExceededError`` or ``MioCreateTimeoutError`` (nothing sent)."""
        if held.turn is None and self.scheduler is not None:
            held.turn = await self.scheduler.acquire(key, self.lane, deadline=until)
        if self.budget is not None and not held.budgeted:
            if not self.budget.take(""):
                raise self._budget_error()
            held.budgeted = True

    def _budget_error(self) -> TaskBudgetError:
        return TaskBudgetError(
            f"the batch's max_tasks budget ({self.max_tasks}) is used up: not submitted (run "
            "the batch again with a larger budget to do it)"
        )


def in_turns_of_keys(jobs: Iterable[T]) -> Iterator[tuple[int, T]]:
    """``(index, job)`` pairs: a list or tuple of jobs of several keys in turns of its keys
    (the first job of each key, then the second of each...), so that one key's 200 jobs listed
    first do not come before another key's 5; anything else (a generator, one key) in order."""
    if not isinstance(jobs, Sequence):
        yield from enumerate(jobs)
        return
    queues: dict[object, deque[int]] = {}
    for index, job in enumerate(jobs):
        queues.setdefault(getattr(job, "key", None), deque()).append(index)
    if len(queues) < 2:
        yield from enumerate(jobs)
        return
    while queues:
        for key in list(queues):
            queue = queues[key]
            index = queue.popleft()
            if not queue:
                del queues[key]
            yield index, jobs[index]
