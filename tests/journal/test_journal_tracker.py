"""The at-most-once rule at its edges (review cases 1 and 3): a record that may stand for a
paid task never goes back to "pending", and one job's bad input never ends a journaled batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from miocreate_async import (
    InvalidInputError,
    MioCreate,
    PollPolicy,
    RetryPolicy,
    SubmissionUncertainError,
    SwapJob,
    SwapOutcome,
)
from miocreate_async._journal import JobState, JournalError, SQLiteJournal
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1)


class FailsOnce(SQLiteJournal):
    """A journal whose first change into ``state`` fails (a full disk, a bug)."""

    def __init__(self, path: Path, state: JobState, error: BaseException) -> None:
        super().__init__(path)
        self.state, self.error = state, error
        self.failed = False

    async def transition(self, job_id: str, expected: Any, state: JobState, **fields: Any) -> Any:
        if state is self.state and not self.failed:
            self.failed = True
            raise self.error
        return await super().transition(job_id, expected, state, **fields)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Emulator, MioCreate, list[SwapJob]]]:
    face = write_sample_face(tmp_path / "face.png", seed=1)
    photo = write_sample_photo(tmp_path / "photo.jpg", seed=1)
    async with (
        Emulator(data_dir=tmp_path / "emulator", seed=1, latency=0.02) as emulator,
        emulator.client(retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05)) as client,
    ):
        yield emulator, client, [SwapJob(image=photo, face=face)]


async def run(client: MioCreate, jobs: list[SwapJob], journal: Any) -> list[SwapOutcome]:
    async with client.swap_many(jobs, journal=journal, poll=FAST) as results:
        return sorted([o async for o in results], key=lambda o: o.index)


def creations(emulator: Emulator) -> int:
    return sum(r["operation"] == "image_swap" for r in emulator.ledger["requests"])


@pytest.mark.parametrize(
    "error",
    [JournalError("the journal could not be written: disk full"), RuntimeError("a bug")],
    ids=["journal-write", "unknown-exception"],
)
async def test_a_failure_after_the_creation_reply_never_makes_the_job_pending(
    tmp_path: Path,
    setup: tuple[Emulator, MioCreate, list[SwapJob]],
    error: BaseException,
) -> None:
    emulator, client, jobs = setup
    path = tmp_path / "batch.journal"
    (first,) = await run(client, jobs, FailsOnce(path, JobState.SUBMITTED, error))
    assert first.error is not None
    assert first.task_id is not None  # the paid task is named in the outcome
    assert creations(emulator) == 1
    # The record stayed "submitting": the next open makes it uncertain, never re-sent.
    (again,) = await run(client, jobs, path)
    assert isinstance(again.error, SubmissionUncertainError)
    assert creations(emulator) == 1
    _, records = await SQLiteJournal.read(path)
    assert [r.state for r in records] == [JobState.UNCERTAIN]


async def test_a_path_with_a_nul_byte_is_its_jobs_outcome_in_a_journaled_batch(
    tmp_path: Path, setup: tuple[Emulator, MioCreate, list[SwapJob]]
) -> None:
    emulator, client, jobs = setup
    bad = SwapJob(image=str(tmp_path / "bad\0.jpg"), face=jobs[0].face)
    outcomes = await run(client, [bad, *jobs], tmp_path / "batch.journal")
    assert isinstance(outcomes[0].error, InvalidInputError)
    assert "NUL" in str(outcomes[0].error)
    assert outcomes[1].error is None
    assert creations(emulator) == 1
