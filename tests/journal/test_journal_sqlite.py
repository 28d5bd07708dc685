"""The SQLite journal on its own: the contract of ``Journal``, durability, locking, privacy."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from miocreate_async._journal import (
    ErrorInfo,
    JobState,
    JournalError,
    JournalMeta,
    JournalMismatchError,
    JournalStateError,
    NewJob,
    SQLiteJournal,
    Summary,
    client_fingerprint,
)

pytestmark = pytest.mark.anyio

CLIENT_ID = "client-id-that-must-not-leak"
META = JournalMeta(
    base_url="http://127.0.0.1:1", client=client_fingerprint(CLIENT_ID), library_version="1.0"
)
S = JobState


def jobs(count: int) -> list[NewJob]:
    return [NewJob(f"job-{n}", n, f"fp-{n}", f"photo{n}.jpg") for n in range(count)]


async def test_a_new_journal_is_private_and_records_who_it_belongs_to(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "batch.journal"
    async with SQLiteJournal(path) as journal:
        summary = await journal.open(META)
        assert summary.total == 0
        records = await journal.register(jobs(3))
        assert [r.state for r in records] == [S.PENDING] * 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    meta, summary, _, _ = await SQLiteJournal.inspect(path)
    assert meta == META
    assert summary[S.PENDING] == 3
    # Neither the client id nor anything like a secret is in the file or its WAL.
    data = b"".join(p.read_bytes() for p in tmp_path.glob("sub/*"))
    assert CLIENT_ID.encode() not in data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_url": "http://127.0.0.1:2"}, "run against http://127.0.0.1:1"),
        ({"client": client_fingerprint("someone-else")}, "another client id"),
        ({"schema_version": 0}, "newer miocreate-async"),
    ],
)
async def test_another_host_account_or_older_library_is_refused(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "j.sqlite"
    async with SQLiteJournal(path) as journal:
        await journal.open(META)
    other = JournalMeta(**{**_fields(META), **change})  # type: ignore[arg-type]
    with pytest.raises(JournalMismatchError, match=message):
        async with SQLiteJournal(path) as journal:
            await journal.open(other)
    # A client with a bare token (no fingerprint) and a newer library may resume it.
    async with SQLiteJournal(path) as journal:
        await journal.open(
            JournalMeta(base_url=META.base_url + "/", client="", library_version="9")
        )


def _fields(meta: JournalMeta) -> dict[str, object]:
    return {
        "base_url": meta.base_url,
        "client": meta.client,
        "library_version": meta.library_version,
        "schema_version": meta.schema_version,
    }


async def test_one_batch_at_a_time_but_status_reads_it_while_it_runs(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    async with SQLiteJournal(path) as first:
        await first.open(META)
        await first.register(jobs(2))
        await first.flush()
        with pytest.raises(JournalError, match="in use by another batch"):
            await SQLiteJournal(path).open(META)
        _, summary, _, _ = await SQLiteJournal.inspect(path)
        assert summary.total == 2
    async with SQLiteJournal(path) as again:
        assert (await again.open(META)).total == 2


async def test_transitions_check_the_state_they_expect(tmp_path: Path) -> None:
    async with SQLiteJournal(tmp_path / "j.sqlite") as journal:
        await journal.open(META)
        await journal.register(jobs(1))
        await journal.transition("job-0", S.PENDING, S.UPLOADED)
        await journal.transition("job-0", (S.PENDING, S.UPLOADED), S.SUBMITTING, kind="image")
        with pytest.raises(JournalStateError, match="is submitting"):
            await journal.transition("job-0", S.UPLOADED, S.SUBMITTING)
        with pytest.raises(JournalStateError, match="cannot become succeeded"):
            await journal.transition("job-0", S.SUBMITTING, S.SUCCEEDED)
        with pytest.raises(JournalStateError, match="no job"):
            await journal.transition("nope", S.PENDING, S.UPLOADED)
        record = await journal.transition("job-0", S.SUBMITTING, S.SUBMITTED, task_id=42)
        assert (record.state, record.task_id, record.kind) == (S.SUBMITTED, 42, "image")
        result = {"merge_key": "r/1.jpg", "size": 10}
        record = await journal.transition(
            "job-0", S.SUBMITTED, S.SUCCEEDED, result=result, expires_at=1e9
        )
        assert record.result == result
        assert record.expires_at == 1e9
        # Re-registering a known job returns it as it is.
        (again,) = await journal.register(jobs(1))
        assert again.state is S.SUCCEEDED


async def test_records_come_soonest_expiring_first_in_pages(tmp_path: Path) -> None:
    async with SQLiteJournal(tmp_path / "j.sqlite") as journal:
        await journal.open(META)
        await journal.register(jobs(1200))
        for n in (5, 7, 9):
            await journal.transition(f"job-{n}", S.PENDING, S.SUBMITTING)
            await journal.transition(f"job-{n}", S.SUBMITTING, S.SUBMITTED, task_id=n)
            await journal.transition(
                f"job-{n}", S.SUBMITTED, S.SUCCEEDED, expires_at=1000.0 - n, result={}
            )
        found = [r.id async for r in journal.records([S.SUCCEEDED])]
        assert found == ["job-9", "job-7", "job-5"]
        pending = [r.index async for r in journal.records([S.PENDING])]
        assert len(pending) == 1197
        assert pending == sorted(pending)
        assert len([r async for r in journal.records([S.PENDING], limit=501)]) == 501
        failed = ErrorInfo.of(ValueError("bad"))
        await journal.transition("job-0", S.PENDING, S.FAILED, error=failed)
        record = await journal.get("job-0")
        assert record is not None
        assert record.error == ErrorInfo("ValueError", "bad")


_CRASH = """
import anyio, os, signal, sys
from miocreate_async._journal import JobState as S, JournalMeta, NewJob, SQLiteJournal
async def main():
    journal = SQLiteJournal(sys.argv[1], group_delay=60)
    await journal.open(JournalMeta(base_url="http://h", client="", library_version="1"))
    await journal.register([NewJob("a", 0, "f"), NewJob("b", 1, "f"), NewJob("c", 2, "f")])
    await journal.transition("a", S.PENDING, S.SUBMITTING)          # the intent: durable
    await journal.transition("b", S.PENDING, S.SUBMITTING)
    await journal.transition("b", S.SUBMITTING, S.SUBMITTED, task_id=7)   # durable
    await journal.transition("c", S.PENDING, S.UPLOADED)            # free: may be lost
    os.kill(os.getpid(), signal.SIGKILL)
anyio.run(main)
"""


@pytest.mark.processes
async def test_durable_changes_survive_sigkill_and_intents_become_uncertain(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    code = textwrap.dedent(_CRASH)
    done = subprocess.run([sys.executable, "-c", code, str(path)], timeout=60, check=False)
    assert done.returncode == -9
    async with SQLiteJournal(path) as journal:
        summary = await journal.open(
            JournalMeta(base_url="http://h", client="", library_version="1")
        )
        found = {name: await journal.get(name) for name in "abc"}
    states = {name: (r.state, r.task_id) for name, r in found.items() if r is not None}
    assert states["a"] == (S.UNCERTAIN, None)
    assert states["b"] == (S.SUBMITTED, 7)
    assert states["c"] in ((S.PENDING, None), (S.UPLOADED, None))
    assert summary.uncertain == 1
    assert summary.in_flight == 1


def test_summary_line_and_dict() -> None:
    counts = {
        S.DOWNLOADED: 800,
        S.FAILED: 12,
        S.SUBMITTED: 30,
        S.SUCCEEDED: 10,
        S.UNCERTAIN: 3,
        S.PENDING: 100,
    }
    summary = Summary(counts, downloads=True, unrecorded=45)
    assert str(summary) == "812 done, 40 in flight, 3 uncertain, 145 to do"
    assert summary.as_dict()["total"] == 1000
    assert str(Summary(counts)) == "822 done, 30 in flight, 3 uncertain, 100 to do"


async def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(JournalError, match=r"not a journal|cannot open"):
        async with SQLiteJournal(path) as journal:
            await journal.open(META)
    with pytest.raises(JournalError, match="no journal"):
        await SQLiteJournal.inspect(tmp_path / "missing.sqlite")
