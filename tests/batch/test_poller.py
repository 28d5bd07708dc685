"""The shared poller's schedule: backoff with age, and quick polls once a task is due."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from miocreate_async import PollPolicy, TaskHandle, TaskKind
from miocreate_async._poller import Poller, _Watch

pytestmark = pytest.mark.anyio


def watch_of_age(kind: TaskKind, age: float) -> _Watch:
    now = anyio.current_time()
    return _Watch(TaskHandle(id=1, kind=kind), created=now - age, seen_pending=now)


def poller(**policy: Any) -> Poller:
    return Poller(client=Any, policy=PollPolicy(**policy))  # type: ignore[arg-type]


def gap_at(poller: Poller, kind: TaskKind, age: float) -> float:
    """Seconds from now to the next poll of a task of ``kind`` that is ``age`` seconds old."""
    return poller._next_poll(watch_of_age(kind, age)) - anyio.current_time()


async def test_an_unknown_kind_is_polled_at_gaps_growing_with_age_up_to_two_settles() -> None:
    unknown = poller(ratio=0.5, minimum=0.1, settle=0.5, maximum=5.0)
    gaps = [gap_at(unknown, TaskKind.VIDEO_SWAP, age) for age in (0.1, 1.0, 60.0)]
    assert gaps == pytest.approx([0.1, 0.5, 1.0], abs=0.01)
    # `maximum` caps every gap.
    capped = poller(ratio=0.5, minimum=0.01, settle=0.5, maximum=0.2)
    assert gap_at(capped, TaskKind.VIDEO_SWAP, 60.0) == pytest.approx(0.2, abs=0.01)


async def test_a_kind_learnt_from_ended_tasks_is_polled_from_its_quickest_end() -> None:
    learnt = poller(settle=0.5, learn_after=3)
    durations = learnt._kind(TaskKind.VIDEO_SWAP)
    for task_id, seconds in enumerate((15.0, 20.0, 25.0)):
        durations.ended(task_id, seconds)
    # The first poll comes at the quickest usual end, not after `first`...
    assert learnt._first_delay(TaskKind.VIDEO_SWAP) == pytest.approx(15.0)
    # ...a task polled early waits for it; past it, polls come every `settle` seconds.
    assert gap_at(learnt, TaskKind.VIDEO_SWAP, 10.0) == pytest.approx(5.0, abs=0.01)
    assert gap_at(learnt, TaskKind.VIDEO_SWAP, 20.0) == pytest.approx(0.5, abs=0.01)
    # Another kind has learnt nothing: gaps growing with age.
    assert gap_at(learnt, TaskKind.IMAGE_SWAP, 1.0) == pytest.approx(0.5, abs=0.01)


async def test_tasks_seen_running_tell_how_long_their_kind_takes_at_least() -> None:
    learning = poller(settle=0.5, learn_after=3)
    durations = learning._kind(TaskKind.VIDEO_SWAP)
    for task_id, age in enumerate((14.0, 12.0, 10.0, 3.0)):
        durations.running(task_id, age)
    # Three tasks ran for 10 s or more and none ended: a new one is not polled before 10 s...
    assert learning._first_delay(TaskKind.VIDEO_SWAP) == pytest.approx(10.0)
    assert gap_at(learning, TaskKind.VIDEO_SWAP, 3.0) == pytest.approx(7.0, abs=0.01)
    # ...while the oldest, which may end at any moment, keep their growing gaps.
    assert gap_at(learning, TaskKind.VIDEO_SWAP, 14.0) == pytest.approx(1.0, abs=0.01)
    # One that ended sooner lowers the bound, and polls past it settle.
    durations.ended(3, 6.0)
    assert learning._first_delay(TaskKind.VIDEO_SWAP) == pytest.approx(6.0)
    assert gap_at(learning, TaskKind.VIDEO_SWAP, 8.0) == pytest.approx(0.5, abs=0.01)


async def test_nothing_is_learnt_without_adaptive() -> None:
    fixed = poller(adaptive=False, ratio=0.5, settle=0.5)
    fixed._kind(TaskKind.VIDEO_SWAP).ended(1, 15.0)
    assert fixed._first_delay(TaskKind.VIDEO_SWAP) == fixed.policy.first
    assert gap_at(fixed, TaskKind.VIDEO_SWAP, 1.0) == pytest.approx(0.5, abs=0.01)
