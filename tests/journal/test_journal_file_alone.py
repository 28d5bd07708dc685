"""The SQLite journal file alone holds every committed record (review case 2): a copy of just
that file, taken while the batch still runs (or after it was killed), resumes."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from miocreate_async._journal import JobState, JournalMeta, NewJob, SQLiteJournal

pytestmark = pytest.mark.anyio

META = JournalMeta(base_url="http://127.0.0.1:1", client="", library_version="1.0")


def states_in(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
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
    with sqlite3.connect(path) as db:  # the layout before saved files were recorded
        db.execute("ALTER TABLE jobs DROP COLUMN saved_size")
        db.execute("ALTER TABLE jobs DROP COLUMN saved_sha256")
    db.close()
    _, records = await SQLiteJournal.read(path)
    assert [(r.id, r.saved_size) for r in records] == [("a", None)]
    async with SQLiteJournal(path) as journal:
        await journal.open(META)
        record = await journal.get("a")
        assert record is not None
        assert record.state is JobState.PENDING
