"""swap_many with a journal, against the emulator: resuming pays nothing twice."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from miocreate_async import (
    ImageSwapResult,
    InvalidInputError,
    MioCreate,
    PollPolicy,
    RetryPolicy,
    SubmissionUncertainError,
    SwapJob,
    SwapOutcome,
    UrlExpiredError,
)
from miocreate_async._journal import InputChangedError, JournalMismatchError
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1)
QUICK_RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)


@asynccontextmanager
async def running(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Emulator, MioCreate]]:
    settings.setdefault("seed", 1)
    settings.setdefault("latency", 0.05)
    async with (
        Emulator(data_dir=tmp_path / "emulator", **settings) as emulator,
        emulator.client(retry=QUICK_RETRY) as client,
    ):
        yield emulator, client


@pytest.fixture
def jobs(tmp_path: Path) -> list[SwapJob]:
    face = write_sample_face(tmp_path / "face.png", seed=1)
    photos = [write_sample_photo(tmp_path / f"photo{i}.jpg", seed=i) for i in range(6)]
    return [SwapJob(image=photo, face=face) for photo in photos]


async def run(
    client: MioCreate, jobs: list[SwapJob], journal: Path, **options: Any
) -> list[SwapOutcome]:
    async with client.swap_many(jobs, journal=journal, poll=FAST, **options) as results:
        outcomes = [outcome async for outcome in results]
    return sorted(outcomes, key=lambda outcome: outcome.index)


def creations(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.ledger["requests"] if r["operation"] == "image_swap"]


async def test_a_finished_batch_run_again_sends_nothing_and_downloads_on_demand(
    tmp_path: Path, jobs: list[SwapJob]
) -> None:
    journal = tmp_path / "photos.journal"
    async with running(tmp_path) as (emulator, client):
        first = await run(client, jobs, journal)
        assert [o.error for o in first] == [None] * 6
        assert not any(o.resumed for o in first)
        requests = emulator.ledger["requests_total"]
        async with client.swap_many(jobs, journal=journal, poll=FAST) as results:
            again = sorted([o async for o in results], key=lambda o: o.index)
            summary = results.summary()
            assert emulator.ledger["requests_total"] == requests  # not one request
            result = again[0].result
            assert isinstance(result, ImageSwapResult)
            # The journal keeps no signed URL: downloading asks for a fresh one.
            path = await result.download(tmp_path / "out/")
            assert path.stat().st_size == result.size
            await results.mark_downloaded(again[0], path)
            assert results.summary()["downloaded"] == 1

        assert all(o.resumed for o in again)
        assert [o.task_id for o in again] == [o.task_id for o in first]
        assert summary.done == 6
        assert summary["succeeded"] == 6
        assert first[0].result is not None
        assert result.merge_key == first[0].result.merge_key
        assert result.expires_at == first[0].result.expires_at
    assert b"X-Amz-Signature" not in journal.read_bytes()


async def test_tasks_created_before_an_interruption_are_waited_for_not_created_again(
    tmp_path: Path, jobs: list[SwapJob]
) -> None:
    journal = tmp_path / "photos.journal"
    async with running(tmp_path, latency=1.5) as (emulator, client):
        with anyio.fail_after(60):
            async with client.swap_many(jobs, journal=journal, concurrency=6, poll=FAST) as results:
                # Leave while the six tasks run (they take 1.5 s).
                while results.stats.tasks_created < 6:  # noqa: ASYNC110 - a live counter
                    await anyio.sleep(0.02)
                assert results.summary().in_flight == 6
        assert len(creations(emulator)) == 6
        outcomes = await run(client, jobs, journal)
        assert len(creations(emulator)) == 6
    assert [o.error for o in outcomes] == [None] * 6
    assert all(o.resumed for o in outcomes)


async def test_an_uncertain_job_is_resent_only_by_choice(
    tmp_path: Path, jobs: list[SwapJob]
) -> None:
    journal = tmp_path / "photos.journal"
    async with running(tmp_path) as (emulator, client):
        # The creation request of the first job is cut after the task was made.
        emulator.scenario("image_swap", fault="cut_after", count=1)
        first = await run(client, jobs[:1], journal)
        assert isinstance(first[0].error, SubmissionUncertainError)
        again = await run(client, jobs[:1], journal)
        assert isinstance(again[0].error, SubmissionUncertainError)
        assert "resubmit_uncertain=True" in str(again[0].error)
        assert again[0].resumed
        assert len(creations(emulator)) == 1
        chosen = await run(client, jobs[:1], journal, resubmit_uncertain=True)
        assert chosen[0].error is None
        assert len(creations(emulator)) == 2
        final = await run(client, jobs[:1], journal)
        assert final[0].error is None
        assert len(creations(emulator)) == 2


async def test_a_changed_input_is_refused_for_its_job_only(
    tmp_path: Path, jobs: list[SwapJob]
) -> None:
    journal = tmp_path / "photos.journal"
    async with running(tmp_path) as (emulator, client):
        await run(client, jobs, journal)
        changed = Path(str(jobs[2].image))
        write_sample_photo(changed, seed=99)
        outcomes = await run(client, jobs, journal)
        assert len(creations(emulator)) == 6
    errors = Counter(type(o.error).__name__ for o in outcomes)
    assert errors == {"NoneType": 5, "InputChangedError": 1}
    assert isinstance(outcomes[2].error, InputChangedError)
    assert "changed since the journal recorded it" in str(outcomes[2].error)


async def test_resuming_against_another_host_is_refused(
    tmp_path: Path, jobs: list[SwapJob]
) -> None:
    journal = tmp_path / "photos.journal"
    async with running(tmp_path) as (_, client):
        await run(client, jobs[:1], journal)
    async with running(tmp_path / "other") as (emulator, other):
        with pytest.raises(JournalMismatchError, match="belongs to a batch run against"):
            await run(other, jobs[:1], journal)
        assert creations(emulator) == []


async def test_an_expired_result_ends_expired_with_its_task_id(
    tmp_path: Path, jobs: list[SwapJob]
) -> None:
    journal = tmp_path / "photos.journal"
    async with running(tmp_path) as (_, client):
        first = await run(client, jobs[:2], journal)
        with contextlib.closing(sqlite3.connect(journal)) as db, db:
            db.execute("UPDATE jobs SET expires_at = 1000 WHERE idx = 0")
        db.close()
        async with client.swap_many(jobs[:2], journal=journal, poll=FAST) as results:
            again = sorted([o async for o in results], key=lambda o: o.index)
            summary = results.summary()
    assert isinstance(again[0].error, UrlExpiredError)
    assert again[0].task_id == first[0].task_id
    assert again[1].error is None
    assert summary["expired"] == 1


async def test_streams_need_an_id_to_be_journaled(tmp_path: Path, jobs: list[SwapJob]) -> None:
    journal = tmp_path / "photos.journal"
    photo = Path(str(jobs[0].image)).read_bytes()
    streamed = [
        SwapJob(image=io.BytesIO(photo), face=jobs[0].face),
        SwapJob(image=io.BytesIO(photo), face=jobs[0].face, id="photo-0"),
    ]
    async with running(tmp_path) as (_, client):
        outcomes = await run(client, streamed, journal)
    assert isinstance(outcomes[0].error, InvalidInputError)
    assert "needs an id" in str(outcomes[0].error)
    assert outcomes[1].error is None
    assert outcomes[1].job_id == "photo-0"


@pytest.mark.processes
def test_import_does_not_load_the_journal() -> None:
    code = (
        "import sys, miocreate_async; from miocreate_async import SwapJob; "
        "print(sorted(m for m in sys.modules if 'journal' in m or m == 'sqlite3'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "sqlite3" not in out.stdout
    assert "_sqlite" not in out.stdout


async def test_the_same_job_twice_needs_ids(tmp_path: Path, jobs: list[SwapJob]) -> None:
    journal = tmp_path / "photos.journal"
    twice = [jobs[0], jobs[1], jobs[0]]
    async with running(tmp_path) as (emulator, client):
        outcomes = await run(client, twice, journal)
        assert len(creations(emulator)) == 2
        named = [attrs.evolve(job, id=f"run-{n}") for n, job in enumerate(twice)]
        again = await run(client, named, tmp_path / "named.journal")
    assert [o.error is None for o in outcomes] == [True, True, False]
    assert "give such jobs distinct ids" in str(outcomes[2].error)
    assert [o.error for o in again] == [None] * 3
