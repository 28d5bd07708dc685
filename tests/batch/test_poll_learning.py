"""The batch poller learns how long each kind of task takes, and its client keeps that for
its next batches: a second batch of the same kind of task is polled far less (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from miocreate_async import PollPolicy, SwapJob
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio

#: Fast polls for 1 s tasks: gaps growing from 20 ms until the kind is learnt; past a learnt
#: end, polls 100 ms apart, so answers late by a loaded machine cost few polls.
POLICY = PollPolicy(first=0.02, minimum=0.02, ratio=0.5, settle=0.1, maximum=0.1, learn_after=4)


@pytest.mark.e2e
async def test_a_client_keeps_what_its_poller_learnt_for_its_next_batch(
    tmp_path: Path, sample_photo: Path, sample_face: Path
) -> None:
    jobs = [SwapJob(media=sample_photo, face=sample_face) for _ in range(16)]
    polls = []
    emulator = Emulator(latency=1.0, seed=1, data_dir=tmp_path / "emulator")
    async with emulator, emulator.client() as client:
        for _ in range(2):
            async with client.swap_many(jobs, concurrency=16, poll=POLICY) as results:
                assert all([outcome.ok async for outcome in results])
            polls.append(results.stats.polls / len(jobs))
    # Unlearnt, a 1 s task is polled some fifteen times; learnt, once or twice (a little more on
    # a loaded machine, where answers come late: tasks long against that delay keep the test
    # from depending on the machine's load).
    first, second = polls
    assert second < first * 0.6
