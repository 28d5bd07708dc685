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
