"""A local batch's budget (``max_tasks``), its spend report and its estimate, against the
emulator: the budget stops creations (uncertain ones count), the jobs left stay to do, two
batches on one client share its scheduler, and an estimate sends nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from miocreate_async import (
    Config,
    Fairness,
    MioCreate,
    PollPolicy,
    Prices,
    RetryPolicy,
    SubmissionUncertainError,
    SwapJob,
    SwapOutcome,
    TaskBudgetError,
)
from miocreate_async._journal import Summary
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Emulator, MioCreate]]:
    async with Emulator(latency=0.1, seed=1, data_dir=tmp_path / "emulator") as emulator:
        config = Config(base_url=emulator.url, poll=FAST)
        retry = RetryPolicy(attempts=2, initial=0.01, maximum=0.02)
        async with emulator.client(config=config, retry=retry, fairness=Fairness(slots=2)) as mc:
            yield emulator, mc


@pytest.fixture
def jobs(tmp_path: Path) -> list[SwapJob]:
    face = write_sample_face(tmp_path / "face.png", seed=1)
    return [
        SwapJob(image=write_sample_photo(tmp_path / f"p{i}.jpg", seed=i), face=face)
        for i in range(6)
    ]


def creations(emulator: Emulator) -> int:
    return sum(r["operation"] == "image_swap" for r in emulator.ledger["requests"])


async def run(
    mc: MioCreate, jobs: list[SwapJob], **options: Any
) -> tuple[list[SwapOutcome], Summary]:
    async with mc.swap_many(jobs, **options) as results:
        return [outcome async for outcome in results], results.summary()


async def test_the_budget_stops_creations_and_a_rerun_with_more_does_the_rest(
    service: tuple[Emulator, MioCreate], jobs: list[SwapJob], tmp_path: Path
) -> None:
    emulator, mc = service
    journal = tmp_path / "journal.sqlite"
    outcomes, summary = await run(mc, jobs, journal=journal, max_tasks=3)
    assert creations(emulator) == 3
    refused = [o for o in outcomes if o.error is not None]
    assert len(refused) == 3
    assert all(isinstance(o.error, TaskBudgetError) for o in refused)
    assert summary.to_do == 3
    assert summary["failed"] == 0
    spend = summary.spend
    assert spend is not None
    assert spend.tasks_created == 3
    assert spend.succeeded == 3
    assert spend.by_kind() == {"image": 3}

    before = emulator.ledger["requests_total"]
    estimate = await mc.estimate(jobs, journal=journal, prices=Prices(image=2))
    assert emulator.ledger["requests_total"] == before  # the estimate sent nothing
    assert (estimate.done, estimate.to_create, estimate.credits) == (3, 3, 6)
    assert estimate.wall_time is not None  # the client learnt how long image swaps take

    outcomes, summary = await run(mc, jobs, journal=journal, max_tasks=10)
    assert creations(emulator) == 6  # the three left, nothing paid twice
    assert all(o.ok for o in outcomes)
    assert summary.spend is not None
    assert summary.spend.tasks_created == 6


async def test_uncertain_creations_count_against_the_budget(
    service: tuple[Emulator, MioCreate], jobs: list[SwapJob]
) -> None:
    emulator, mc = service
    # The connection is cut once the request was read: the creation may have been paid.
    emulator.scenario("image_swap", fault="cut_after", count=1)
    outcomes, _ = await run(mc, jobs[:3], max_tasks=1, concurrency=1)
    errors = [type(o.error) for o in outcomes]
    assert errors.count(SubmissionUncertainError) == 1
    assert errors.count(TaskBudgetError) == 2
    assert creations(emulator) == 1


async def test_two_batches_on_one_client_share_its_slots(
    service: tuple[Emulator, MioCreate], jobs: list[SwapJob]
) -> None:
    emulator, mc = service
    async with anyio.create_task_group() as group:
        group.start_soon(run, mc, jobs[:3])
        group.start_soon(run, mc, jobs[3:])
    tasks = emulator.ledger["tasks"]
    assert len(tasks) == 6
    # At no creation were more than the client's 2 slots' tasks still running.
    for task in tasks:
        running = [
            other for other in tasks if other["created_at"] <= task["created_at"] < other["ends_at"]
        ]
        assert len(running) <= 2


async def test_jobs_past_the_budget_upload_nothing(
    service: tuple[Emulator, MioCreate], jobs: list[SwapJob]
) -> None:
    # One job at a time: once the budget's two creations were sent, the other four jobs are
    # refused before their uploads (only the shared face and two photos went to storage).
    emulator, mc = service
    outcomes, _ = await run(mc, jobs, max_tasks=2, concurrency=1)
    assert creations(emulator) == 2
    assert sum(isinstance(o.error, TaskBudgetError) for o in outcomes) == 4
    uploads = [r for r in emulator.ledger["requests"] if r["operation"] == "upload_url"]
    assert len(uploads) == 3
