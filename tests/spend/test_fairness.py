"""Fairness on one shared client, against the emulator: one key floods 200 jobs while another
sends 5; the second key's jobs start within the first few slots and finish first, and the
flood's allowance stops it at its limit with no creation sent beyond it (the emulator's ledger)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from miocreate_async import (
    AllowanceExceededError,
    Config,
    Fairness,
    ImageSwapResult,
    Key,
    KeyLimits,
    MioCreate,
    PollPolicy,
    SwapJob,
    SwapOutcome,
    TaskBudgetError,
    TaskCreated,
    UnsupportedFormatError,
)
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1)
FLOOD_ALLOWANCE = 20
SLOTS = 4


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[tuple[Emulator, MioCreate]]:
    # Tasks take 0.2 s: long enough that the flood holds every slot when the other key comes.
    async with Emulator(latency=0.2, seed=1, data_dir=tmp_path / "emulator") as emulator:
        fairness = Fairness(
            slots=SLOTS,
            per_key=KeyLimits(concurrency=SLOTS),
            keys={"flood": KeyLimits(concurrency=SLOTS, allowance=FLOOD_ALLOWANCE)},
        )
        config = Config(base_url=emulator.url, poll=FAST)
        async with emulator.client(config=config, fairness=fairness) as client:
            yield emulator, client


@pytest.fixture
async def keys(shared: tuple[Emulator, MioCreate], tmp_path: Path) -> tuple[Key, Key]:
    """A photo and a face, uploaded once: the jobs need no upload of their own."""
    _, client = shared
    photo = await client.upload(write_sample_photo(tmp_path / "photo.jpg"))
    face = await client.upload(write_sample_face(tmp_path / "face.png", seed=1))
    return photo, face


def creations(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.ledger["requests"] if r["operation"] in ("image_swap",)]


async def test_a_flood_waits_its_turn_and_stops_at_its_allowance(
    shared: tuple[Emulator, MioCreate], keys: tuple[Key, Key]
) -> None:
    emulator, client = shared
    photo, face = keys
    flood_jobs = [SwapJob(image=photo, face=face, key="flood") for _ in range(200)]
    first_created = anyio.Event()
    flood: list[SwapOutcome] = []
    few: list[ImageSwapResult] = []
    finished: list[str] = []

    def events(event: object) -> None:
        if isinstance(event, TaskCreated):
            first_created.set()

    async def run_flood() -> None:
        async with client.swap_many(flood_jobs, concurrency=16, events=events) as results:
            async for outcome in results:
                flood.append(outcome)
                if outcome.ok:
                    finished.append("flood")

    async def one_swap(i: int) -> None:
        result = await client.swap_image(photo, face, key="few", timeout=60)
        few.append(result)
        finished.append("few")

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            group.start_soon(run_flood)
            await first_created.wait()  # the flood holds the slots first
            for i in range(5):
                group.start_soon(one_swap, i)

    # Exactly the allowance of the flood was created, and the few's 5: nothing beyond it.
    created = creations(emulator)
    assert len(created) == FLOOD_ALLOWANCE + 5
    assert sum(outcome.task_id is not None for outcome in flood) == FLOOD_ALLOWANCE
    refused = [outcome for outcome in flood if outcome.error is not None]
    assert len(refused) == 200 - FLOOD_ALLOWANCE
    assert all(isinstance(outcome.error, AllowanceExceededError) for outcome in refused)
    assert all(isinstance(outcome.error, TaskBudgetError) for outcome in refused)
    assert client.allowance_left("flood") == 0
    assert client.allowance_left("few") is None  # no allowance for that key

    # The few started within the first slots: their tasks are among the first created, once
    # the flood's first tasks (at most SLOTS in flight, one ended per slot freed) were in.
    order = sorted(task["id"] for task in emulator.ledger["tasks"])
    flood_tasks = {outcome.task_id for outcome in flood}
    ranks = [rank for rank, task in enumerate(order) if task not in flood_tasks]
    assert len(few) == len(ranks) == 5
    assert ranks[-1] < 2 * SLOTS + 5, ranks
    # ...and finished first: every one of theirs before most of the flood's.
    last_few = max(i for i, who in enumerate(finished) if who == "few")
    assert finished[last_few + 1 :].count("flood") >= FLOOD_ALLOWANCE - 2 * SLOTS - 5


async def test_refusals_before_creation_use_no_allowance(
    shared: tuple[Emulator, MioCreate], keys: tuple[Key, Key]
) -> None:
    emulator, client = shared
    photo, face = keys
    # The service refuses the creation with a code (nothing created): given back.
    emulator.scenario("image_swap", code=703, count=3)
    for _ in range(3):
        with pytest.raises(UnsupportedFormatError):
            await client.swap_image(photo, face, key="flood", timeout=30)
    assert client.allowance_left("flood") == FLOOD_ALLOWANCE
    await client.swap_image(photo, face, key="flood", timeout=30)
    assert client.allowance_left("flood") == FLOOD_ALLOWANCE - 1


async def test_in_one_batch_a_key_listed_last_is_not_served_last(
    shared: tuple[Emulator, MioCreate], keys: tuple[Key, Key]
) -> None:
    emulator, client = shared
    photo, face = keys
    jobs = [SwapJob(image=photo, face=face, key="flood") for _ in range(200)]
    jobs += [SwapJob(image=photo, face=face, key="few") for _ in range(5)]
    with anyio.fail_after(120):
        async with client.swap_many(jobs, concurrency=16) as results:
            outcomes = [outcome async for outcome in results]
    assert len(creations(emulator)) == FLOOD_ALLOWANCE + 5
    few = {o.task_id for o in outcomes if o.index >= 200}
    assert None not in few
    assert all(o.index < 200 for o in outcomes if o.error is not None)
    order = sorted(task["id"] for task in emulator.ledger["tasks"])
    ranks = [rank for rank, task in enumerate(order) if task in few]
    assert ranks[-1] < 2 * SLOTS + 5, ranks
    # Handed out in completion order: the few's ended among the first.
    ended = [o.index >= 200 for o in outcomes if o.ok]
    assert sum(ended[: 2 * SLOTS + 5]) == 5


async def test_a_key_past_its_allowance_uploads_nothing(
    shared: tuple[Emulator, MioCreate], keys: tuple[Key, Key], tmp_path: Path
) -> None:
    emulator, client = shared
    photo, face = keys
    for _ in range(FLOOD_ALLOWANCE):
        await client.swap_image(photo, face, key="flood", timeout=30)
    before = emulator.ledger["requests_total"]
    # Files to upload this time: refused before a byte of them leaves.
    image = write_sample_photo(tmp_path / "another.jpg", seed=9)
    with pytest.raises(AllowanceExceededError):
        await client.swap_image(image, tmp_path / "face.png", key="flood", timeout=30)
    assert emulator.ledger["requests_total"] == before
