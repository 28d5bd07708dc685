"""``miocreate batch`` with its journal, and ``miocreate journal status``: run it again and it
resumes; Ctrl-C says what was paid and not saved; a changed input or another host is refused."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"


def environment(emulator: Emulator) -> dict[str, str]:
    return {
        **os.environ,
        "MIOCREATE_BASE_URL": emulator.url,
        "MIOCREATE_CLIENT_ID": emulator.client_id,
        "MIOCREATE_CLIENT_SECRET": emulator.client_secret,
    }


def run(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", CLI, *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for n in range(4):
        write_sample_photo(photos / f"p{n}.jpg", seed=n)
    write_sample_face(tmp_path / "face.png", seed=1)
    return photos


def creations(emulator: Emulator) -> int:
    ops = ("image_swap", "video_swap")
    return sum(1 for r in emulator.ledger["requests"] if r["operation"] in ops and r["status"])


def batch(folder: Path, *more: str | Path) -> list[str | Path]:
    out = folder.parent / "out"
    return ["batch", folder, "--face", folder.parent / "face.png", "-o", out, *more]


def test_the_same_command_again_resumes_and_says_so(served: Emulator, folder: Path) -> None:
    env = environment(served)
    first = run(env, *batch(folder))
    assert first.returncode == 0, first.stderr
    journal = folder.parent / "out" / ".miocreate-journal.sqlite"
    assert oct(journal.stat().st_mode & 0o777) == "0o600"
    made = creations(served)
    again = run(env, *batch(folder))
    assert again.returncode == 0, again.stderr
    assert "resuming: 4 done, 0 in flight, 0 uncertain, 0 to do" in again.stderr
    assert "4 of 4 succeeded" in again.stdout
    assert creations(served) == made
    # One more photo: only it is done.
    write_sample_photo(folder / "p9.jpg", seed=9)
    more = run(env, "--json", *batch(folder))
    assert "resuming: 4 done, 0 in flight, 0 uncertain, 1 to do" in more.stderr
    report = json.loads(more.stdout)
    assert (report["succeeded"], report["resumed"]) == (5, 4)
    assert creations(served) == made + 1

    status = run(env, "journal", "status", folder.parent / "out")
    assert status.returncode == 0, status.stderr
    assert "5 done, 0 in flight, 0 uncertain, 0 to do" in status.stdout
    document = json.loads(run(env, "journal", "status", journal, "--json").stdout)
    assert document["summary"]["downloaded"] == 5
    assert document["base_url"] == served.url
    assert served.client_id not in journal.read_text(errors="replace")


def test_no_journal_keeps_none(served: Emulator, folder: Path) -> None:
    done = run(environment(served), *batch(folder, "--no-journal"))
    assert done.returncode == 0, done.stderr
    assert not (folder.parent / "out" / ".miocreate-journal.sqlite").exists()


def test_a_changed_input_is_refused_and_another_host_too(served: Emulator, folder: Path) -> None:
    env = environment(served)
    journal = folder.parent / "elsewhere.sqlite"
    assert run(env, *batch(folder, "--journal", journal)).returncode == 0
    write_sample_photo(folder / "p2.jpg", seed=42)
    changed = run(env, "--json", "--overwrite", *batch(folder, "--journal", journal))
    assert changed.returncode == 1
    failed = [job for job in json.loads(changed.stdout)["jobs"] if job["status"] == "failed"]
    assert [job["error"]["type"] for job in failed] == ["InputChangedError"]
    assert failed[0]["image"].endswith("p2.jpg")
    other = run(
        {**env, "MIOCREATE_BASE_URL": "http://127.0.0.1:9"}, *batch(folder, "--journal", journal)
    )
    assert other.returncode == 1
    assert "belongs to a batch run against" in other.stderr
    assert "resuming" not in other.stderr


def tasks_known(journal: Path) -> int:
    """Jobs whose task id the batch's journal holds (0 while it cannot be read)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
            (count,) = db.execute("SELECT count(*) FROM jobs WHERE task_id IS NOT NULL").fetchone()
    except sqlite3.Error:
        return 0
    return int(count)


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("json_output", [False, True])
def test_ctrl_c_says_what_was_paid_and_not_saved_and_the_rerun_collects_it(
    folder: Path, json_output: bool
) -> None:
    # Tasks take 2.5 s; on a loaded machine a few may still end before the signal.
    with Emulator(latency=2.5, seed=4).run_in_thread() as slow:
        env = environment(slow)
        args = ["--json"] if json_output else []
        command = [sys.executable, "-c", CLI, *args, *map(str, batch(folder))]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # The signal comes once the batch knows its 4 tasks: the service creating them is not
        # enough (on a loaded machine the replies may still be on their way).
        journal = folder.parent / "out" / ".miocreate-journal.sqlite"
        wait_for(lambda: tasks_known(journal) == 4)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        if json_output:
            report = json.loads(out)
            assert report["interrupted"] is True
            unsaved = len(report["paid_not_saved"])
            assert unsaved + report["saved"] == 4
            assert "resumes" in report["resume"]
        else:
            match = re.search(r"(\d) of 4 saved; (\d) task\(s\) created and not saved", err)
            assert match is not None, err
            unsaved = int(match[2])
            assert int(match[1]) + unsaved == 4
            assert "running the same command again resumes" in err
        again = run(env, *batch(folder))
        assert again.returncode == 0, again.stderr
        resumed = re.search(
            r"resuming: (\d) done, (\d) in flight, 0 uncertain, 0 to do", again.stderr
        )
        assert resumed is not None, again.stderr
        # A result saved as the signal came may be recorded saved though not reported so.
        assert int(resumed[1]) + int(resumed[2]) == 4
        assert int(resumed[2]) <= unsaved
        assert len(slow.ledger["tasks"]) == 4
