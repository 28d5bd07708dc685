"""The journal records when each task was created (the spend report's day), in a new journal
and in one written before the column existed."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from miocreate_async._journal import JobState, NewJob, SQLiteJournal
from miocreate_async._journal._interface import JournalMeta

pytestmark = pytest.mark.anyio

META = JournalMeta(base_url="http://emulator", client="me", library_version="0")


async def test_the_creation_reply_records_its_moment_once(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "j.sqlite")
    await journal.open(META)
    try:
        await journal.register([NewJob(id="a", index=0, fingerprint="f", label="a")])
        await journal.transition("a", JobState.PENDING, JobState.SUBMITTING, kind="image")
        before = time.time()
        created = await journal.transition("a", JobState.SUBMITTING, JobState.SUBMITTED, task_id=7)
        assert created.created_at is not None
        assert before <= created.created_at <= time.time()
        done = await journal.transition(
            "a", JobState.SUBMITTED, JobState.SUCCEEDED, expires_at=time.time() + 60
        )
        assert done.created_at == created.created_at  # not moved by later steps
    finally:
        await journal.close()


async def test_a_journal_of_an_earlier_version_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    journal = SQLiteJournal(path)
    await journal.open(META)
    await journal.register([NewJob(id="a", index=0, fingerprint="f", label="a")])
    await journal.close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE jobs DROP COLUMN created_at")
    db.close()
    journal = SQLiteJournal(path)
    await journal.open(META)
    try:
        record = await journal.get("a")
        assert record is not None
        assert record.created_at is None
        await journal.transition("a", JobState.PENDING, JobState.SUBMITTING, kind="image")
        created = await journal.transition("a", JobState.SUBMITTING, JobState.SUBMITTED, task_id=1)
        assert created.created_at is not None
    finally:
        await journal.close()
