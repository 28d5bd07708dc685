"""What a SIGKILL leaves behind never stops the rerun: a result saved before the journal
committed it (free changes are grouped), a journal file created but never committed to, the
temporary files of a download cut short. Each is built by hand here, as the kill leaves it."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from miocreate_async import PollPolicy, RetryPolicy, SwapJob
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"
FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1)
JOURNAL = ".miocreate-journal.sqlite"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for n in range(3):
        write_sample_photo(photos / f"p{n}.jpg", seed=n)
    write_sample_face(tmp_path / "face.png", seed=1)
    return photos


def batch(emulator: Emulator, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MIOCREATE_BASE_URL": emulator.url,
        "MIOCREATE_CLIENT_ID": emulator.client_id,
        "MIOCREATE_CLIENT_SECRET": emulator.client_secret,
    }
    command = [sys.executable, "-c", CLI, "--json", "batch", str(folder)]
    command += ["--face", str(folder.parent / "face.png"), "-o", str(folder.parent / "out")]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def count(emulator: Emulator, *operations: str) -> int:
    return sum(1 for r in emulator.ledger["requests"] if r["operation"] in operations)


def lose_the_result(journal: Path, image: str) -> None:
    """The job back to ``submitted``, as a SIGKILL leaves it after its result was saved but
    before the grouped commit of that result."""
    with contextlib.closing(sqlite3.connect(journal)) as db, db:
        changed = db.execute(
            "UPDATE jobs SET state = 'submitted', result = NULL, expires_at = NULL, path = NULL "
            "WHERE label LIKE ?",
            (f"%{image}%",),
        ).rowcount
    db.close()
    assert changed == 1


def test_an_output_saved_before_its_result_was_committed_is_resumed_not_refused(
    served: Emulator, folder: Path
) -> None:
    first = batch(served, folder)
    assert first.returncode == 0, first.stderr
    out = folder.parent / "out"
    lose_the_result(out / JOURNAL, "p1.jpg")
    stale = out / ".p1-swapped.jpg.0123abcd.part"  # a download of it cut short
    stale.write_bytes(b"\xff\xd8 half")
    other = out / ".notes.part"  # not a name the library gives its temporary files
    other.write_bytes(b"mine")
    paid, fetched = count(served, "image_swap"), count(served, "storage_get")

    again = batch(served, folder)

    assert again.returncode == 0, f"exit {again.returncode}: {again.stderr}{again.stdout}"
    assert "resuming: 2 done, 1 in flight, 0 uncertain, 0 to do" in again.stderr
    report = json.loads(again.stdout)
    assert [job["status"] for job in report["jobs"]] == ["succeeded"] * 3
    assert all(job["resumed"] for job in report["jobs"])
    # Its task was waited for (a free poll), not created again; its saved file was kept.
    assert count(served, "image_swap") == paid
    assert count(served, "storage_get") == fetched
    assert not stale.exists()
    assert other.read_bytes() == b"mine"


def test_a_journal_killed_before_its_first_commit_starts_afresh(
    served: Emulator, folder: Path
) -> None:
    out = folder.parent / "out"
    out.mkdir()
    (out / JOURNAL).touch(mode=0o600)  # created, nothing committed yet

    done = batch(served, folder)

    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    assert json.loads(done.stdout)["succeeded"] == 3


@pytest.mark.anyio
@pytest.mark.parametrize("recorded", ["succeeded", "submitted"])
async def test_a_resumed_download_removes_the_temporary_files_a_killed_one_left(
    tmp_path: Path, recorded: str
) -> None:
    face = write_sample_face(tmp_path / "face.png", seed=1)
    photos = [write_sample_photo(tmp_path / f"photo{n}.jpg", seed=n) for n in range(2)]
    jobs = [SwapJob(image=photo, face=face) for photo in photos]
    journal = tmp_path / "photos.journal"
    out = tmp_path / "out"
    out.mkdir()
    retry = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
    async with (
        Emulator(data_dir=tmp_path / "emulator", latency=0.05, seed=1) as emulator,
        emulator.client(retry=retry) as client,
    ):
        async with client.swap_many(jobs, journal=journal, poll=FAST) as results:
            assert [o.ok async for o in results] == [True, True]
        if recorded == "submitted":
            lose_the_result(journal, "photo0.jpg")
        stale = out / ".photo0.jpg.0123abcd.part"
        kept = [out / ".photo0.jpg.part", out / ".photo1.jpg.89abcdef.part", out / "photo0.txt"]
        for path in [stale, *kept]:
            path.write_bytes(b"left")
        async with client.swap_many(jobs, journal=journal, poll=FAST) as results:
            (outcome,) = [o async for o in results if o.index == 0]
            assert outcome.resumed
            assert outcome.result is not None
            saved = await outcome.result.download(out / "photo0.jpg")
    assert saved.stat().st_size == outcome.result.size
    assert not stale.exists()
    # Only its own temporary files of that destination: nothing else is touched.
    assert all(path.read_bytes() == b"left" for path in kept)
