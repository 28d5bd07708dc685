"""The shared poller's schedule: backoff with age, and quick polls once a task is due."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from miocreate_async import PollPolicy, TaskHandle, TaskKind
from miocreate_async._poller import Poller, _Durations, _Watch

pytestmark = pytest.mark.anyio


def watch_of_age(kind: TaskKind, age: float) -> _Watch:
    now = anyio.current_time()
    return _Watch(TaskHandle(id=1, kind=kind), created=now - age, seen_pending=now)


async def test_gaps_grow_with_age_up_to_the_cap() -> None:
    poller = Poller(client=Any, policy=PollPolicy(ratio=0.2, minimum=0.1, maximum=3.0))  # type: ignore[arg-type]
    gaps = [
        poller._next_poll(watch_of_age(TaskKind.VIDEO_SWAP, age)) - anyio.current_time()
        for age in (0.1, 5.0, 60.0)
    ]
    assert gaps == pytest.approx([0.1, 1.0, 3.0], abs=0.01)


async def test_polls_settle_once_a_task_is_past_its_kinds_usual_end() -> None:
    policy = PollPolicy(ratio=0.2, maximum=5.0, settle=0.5, learn_after=3)
    poller = Poller(client=Any, policy=policy)  # type: ignore[arg-type]
    durations = poller._durations.setdefault(TaskKind.VIDEO_SWAP, _Durations())
    for seconds in (15.0, 20.0, 25.0):
        durations.add(seconds)
    # Learnt: the first poll comes at the quickest usual end, not after `first`.
    assert poller._first_delay(TaskKind.VIDEO_SWAP) == pytest.approx(15.0)
    now = anyio.current_time()
    # Before the usual end the gap grows with age; past it, polls come every `settle` seconds.
    assert poller._next_poll(watch_of_age(TaskKind.VIDEO_SWAP, 10.0)) - now == pytest.approx(
        2.0, abs=0.01
    )
    assert poller._next_poll(watch_of_age(TaskKind.VIDEO_SWAP, 20.0)) - now == pytest.approx(
        0.5, abs=0.01
    )
    # Another kind has learnt nothing yet: its schedule is unchanged.
    assert poller._next_poll(watch_of_age(TaskKind.IMAGE_SWAP, 20.0)) - now == pytest.approx(
        4.0, abs=0.01
    )
