"""The client-wide scheduler on its own (no sockets): lanes, per-key concurrency, allowances."""

from __future__ import annotations

import anyio
import pytest

from miocreate_async import (
    Allowance,
    AllowanceExceededError,
    Fairness,
    InvalidInputError,
    KeyLimits,
    MioCreateTimeoutError,
    TaskBudgetError,
)
from miocreate_async._fairness import Scheduler

pytestmark = [pytest.mark.anyio]


async def test_interactive_turns_come_before_bulk_ones_when_a_slot_frees() -> None:
    scheduler = Scheduler(Fairness(slots=1))
    held = await scheduler.acquire("a", "bulk", deadline=None)
    order: list[str] = []

    async def wait(name: str, key: str, lane: str) -> None:
        turn = await scheduler.acquire(key, lane, deadline=None)  # type: ignore[arg-type]
        order.append(name)
        scheduler.release(turn)

    async with anyio.create_task_group() as group:
        for i in range(3):
            group.start_soon(wait, f"bulk{i}", "a", "bulk")
        await anyio.wait_all_tasks_blocked()
        group.start_soon(wait, "interactive", "b", "interactive")
        await anyio.wait_all_tasks_blocked()
        scheduler.release(held)
    assert order[0] == "interactive"
    assert order[1:] == ["bulk0", "bulk1", "bulk2"]


async def test_in_a_lane_the_least_busy_key_goes_first_and_each_key_keeps_its_limit() -> None:
    scheduler = Scheduler(Fairness(slots=3, per_key=KeyLimits(concurrency=2)))
    a1 = await scheduler.acquire("a", "bulk", deadline=None)
    a2 = await scheduler.acquire("a", "bulk", deadline=None)
    got: list[str] = []

    async def wait(key: str) -> None:
        await scheduler.acquire(key, "bulk", deadline=None)
        got.append(key)

    async with anyio.create_task_group() as group:
        group.start_soon(wait, "a")  # over its key's limit: waits although a slot is free
        await anyio.wait_all_tasks_blocked()
        group.start_soon(wait, "b")
        await anyio.wait_all_tasks_blocked()
        assert got == ["b"]
        scheduler.release(a1)
    assert got == ["b", "a"]
    scheduler.release(a2)


async def test_a_turn_not_given_by_the_deadline_is_a_timeout_and_leaves_the_queue() -> None:
    scheduler = Scheduler(Fairness(slots=1))
    held = await scheduler.acquire(None, "bulk", deadline=None)
    with pytest.raises(MioCreateTimeoutError, match="nothing was sent"):
        await scheduler.acquire(None, "bulk", deadline=anyio.current_time() + 0.05)
    scheduler.release(held)
    turn = await scheduler.acquire(None, "bulk", deadline=anyio.current_time() + 1)
    scheduler.release(turn)


async def test_an_allowance_counts_what_was_spent_and_gets_back_what_was_not() -> None:
    scheduler = Scheduler(Fairness(per_key=KeyLimits(allowance=2)))
    spent = await scheduler.acquire("u", "interactive", deadline=None)
    spent.spent = True
    scheduler.release(spent)
    refused = await scheduler.acquire("u", "interactive", deadline=None)
    scheduler.release(refused)  # nothing was sent: given back
    assert scheduler.remaining("u") == 1
    last = await scheduler.acquire("u", "interactive", deadline=None)
    last.spent = True
    scheduler.release(last)
    with pytest.raises(AllowanceExceededError) as caught:
        await scheduler.acquire("u", "interactive", deadline=None)
    assert caught.value.key == "u"
    assert isinstance(caught.value, TaskBudgetError)
    assert scheduler.remaining("other") == 2  # per key


def test_an_allowance_window_forgets_old_units() -> None:
    now = [0.0]
    allowance = Allowance(1, window=10, clock=lambda: now[0])
    assert allowance.take("u")
    assert not allowance.take("u")
    now[0] = 10.5
    assert allowance.take("u")
    allowance.give_back("u")
    assert allowance.remaining("u") == 1


@pytest.mark.parametrize(
    "settings",
    [{"slots": 0}, {"per_key": KeyLimits}, {"slots": True}, {"keys": {"u": 3}}],
    ids=["zero-slots", "not-limits", "bool", "not-limits-of-a-key"],
)
def test_bad_settings_are_typed_errors(settings: dict[str, object]) -> None:
    with pytest.raises((InvalidInputError, TypeError)):
        Fairness(**settings)  # type: ignore[arg-type]


def test_a_list_of_many_keys_jobs_is_read_in_turns_of_its_keys() -> None:
    from miocreate_async._fairness import in_turns_of_keys

    class Job:
        def __init__(self, key: str | None) -> None:
            self.key = key

    jobs = [Job("a"), Job("a"), Job("a"), Job("b"), Job(None)]
    assert [index for index, _ in in_turns_of_keys(jobs)] == [0, 3, 4, 1, 2]
    one_key = [Job("a"), Job("a")]
    assert [index for index, _ in in_turns_of_keys(one_key)] == [0, 1]
    lazy = (job for job in jobs)
    assert [index for index, _ in in_turns_of_keys(lazy)] == [0, 1, 2, 3, 4]
