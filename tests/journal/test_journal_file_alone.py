"""The SQLite journal file alone holds every committed record (review case 2): a copy of just
that file, taken while the batch still runs (or after it was killed), resumes."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from miocreate_async._journal import JobState, JournalMeta, NewJob, SQLiteJournal

pytestmark = pytest.mark.anyio

META = JournalMeta(base_url="http://127.0.0.1:1", client="", library_version="1.0")


def states_in(path: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        return dict(db.execute("SELECT id, state FROM jobs").fetchall())


async def test_a_copy_of_the_file_alone_holds_every_committed_record(tmp_path: Path) -> None:
    path = tmp_path / "batch.journal"
    async with SQLiteJournal(path) as journal:
        await journal.open(META)
        await journal.register([NewJob("a", 0, "fp-a"), NewJob("b", 1, "fp-b")])
        # The intent is committed durably before the call returns: the file has it now.
        await journal.transition("a", JobState.PENDING, JobState.SUBMITTING, kind="image")
        await journal.transition("a", JobState.SUBMITTING, JobState.SUBMITTED, task_id=7)
        await journal.flush()
        copy = tmp_path / "backup" / "batch.journal"
        copy.parent.mkdir()
        shutil.copyfile(path, copy)  # the file only: no -wal, no -shm beside it
        assert states_in(copy) == {"a": "submitted", "b": "pending"}
    assert not list(tmp_path.glob("batch.journal-wal"))


async def test_a_journal_of_an_earlier_version_is_read_and_opened(tmp_path: Path) -> None:
    path = tmp_path / "batch.journal"
    async with SQLiteJournal(path) as journal:
        await journal.open(META)
        await journal.register([NewJob("a", 0, "fp-a")])
    # The layout before saved files were recorded:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("ALTER TABLE jobs DROP COLUMN saved_size")
        db.execute("ALTER TABLE jobs DROP COLUMN saved_sha256")
    _, records = await SQLiteJournal.read(path)
    assert [(r.id, r.saved_size) for r in records] == [("a", None)]
    async with SQLiteJournal(path) as journal:
        await journal.open(META)
        record = await journal.get("a")
        assert record is not None
        assert record.state is JobState.PENDING


@pytest.mark.processes
def test_a_journal_killed_mid_transaction_is_still_read(tmp_path: Path) -> None:
    """A kill mid-transaction leaves a hot rollback journal (pages already spilled into the
    file): reading the journal (``journal status``, the CLI's resume) rolls it back."""
    path = tmp_path / "batch.journal"
    script = f"""
import os, signal, sqlite3
db = sqlite3.connect({str(path)!r}, isolation_level=None)
db.execute("PRAGMA cache_size = 10")  # spill changed pages into the file mid-transaction
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE jobs SET label = hex(randomblob(300))")
os.kill(os.getpid(), signal.SIGKILL)
"""

    async def written() -> None:
        async with SQLiteJournal(path) as journal:
            await journal.open(META)
            await journal.register([NewJob(f"j{n}", n, "fp", "photo.jpg") for n in range(2000)])

    anyio.run(written)
    killed = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert killed.returncode == -9
    assert Path(f"{path}-journal").stat().st_size > 0
    _, records = anyio.run(SQLiteJournal.read, path)
    assert len(records) == 2000
    assert {r.label for r in records} == {"photo.jpg"}
