"""``miocreate batch --redis`` as a user runs it (a subprocess), with a ``miocreate worker``: a
rerun resumes as a local batch does, an interruption lists what the workers created and did not
save, and ``miocreate journal status --redis`` reads the distributed batch."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from miocreate_async.emulator import write_sample_face, write_sample_photo

from .test_distributed_processes import (
    CLI,
    Processes,
    ledger,
    start_emulator,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.processes]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    group = Processes(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


def write_jobs(folder: Path, count: int) -> Path:
    folder.mkdir()
    write_sample_face(folder.parent / "face.png", seed=1)
    for i in range(count):
        write_sample_photo(folder / f"p{i:02d}.jpg", seed=i, size=(160, 120))
    return folder


def test_a_rerun_of_a_redis_batch_resumes_like_a_local_one(
    redis_url: str, processes: Processes, tmp_path: Path
) -> None:
    jobs = write_jobs(tmp_path / "jobs", 5)
    url = start_emulator(processes, "--latency", "0.1-0.3")
    start_worker(processes, redis_url, 0)
    out = tmp_path / "out"
    command: tuple[str, ...] = (
        "batch",
        str(jobs),
        "--face",
        str(tmp_path / "face.png"),
        "-o",
        str(out),
    )
    command += ("--redis", redis_url)

    first = processes.run(*command, "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert (report["succeeded"], report["failed"]) == (5, 0)
    saved = sorted(path.name for path in out.iterdir())
    assert len(saved) == 5

    # Run again, plain and with --overwrite: resumed from the shared journal, nothing paid.
    for extra in ((), ("--overwrite",)):
        again = processes.run(*command, *extra, "--json")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "resuming: 5 done" in again.stderr, again.stderr
        report = json.loads(again.stdout)
        assert (report["succeeded"], report["failed"], report["resumed"]) == (5, 0, 5)
    assert len(ledger(url)["tasks"]) == 5
    assert sorted(path.name for path in out.iterdir()) == saved

    # The shared journal recorded every saved file.
    status = processes.run(
        "journal", "status", "--redis", redis_url, "--batch", batch_name(out), "--json"
    )
    assert status.returncode == 0, status.stdout + status.stderr
    data = json.loads(status.stdout)
    assert data["batch"] == batch_name(out)
    assert data["summary"]["downloaded"] == 5
    text = processes.run("journal", "status", "--redis", redis_url, "--batch", batch_name(out))
    assert text.returncode == 0
    assert "downloaded 5" in text.stdout

    missing = processes.run("journal", "status", "--redis", redis_url, "--batch", "nope")
    assert missing.returncode == 2  # as for a missing journal file
    assert "no batch 'nope'" in missing.stderr


def test_an_interrupted_redis_batch_lists_the_tasks_created_and_not_saved_then_resumes(
    redis_url: str, processes: Processes, tmp_path: Path
) -> None:
    jobs = write_jobs(tmp_path / "jobs", 4)
    # Each task takes 6-8 s: the driver is interrupted while the workers' tasks run.
    url = start_emulator(processes, "--latency", "6-8")
    start_worker(processes, redis_url, 0)
    out = tmp_path / "out"
    command: tuple[str, ...] = (
        "batch",
        str(jobs),
        "--face",
        str(tmp_path / "face.png"),
        "-o",
        str(out),
    )
    command += ("--redis", redis_url)
    driver = processes.start("driver", "-c", CLI, *command)
    wait_for(lambda: len(ledger(url)["tasks"]) == 4, 60, "4 tasks created")
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=30) == 130, processes.log("driver")
    log = processes.log("driver")
    assert "0 of 4 saved; 4 task(s) created and not saved" in log, log
    for task in ledger(url)["tasks"]:
        assert f"task {task['id']}:" in log
    assert "running the same command again resumes" in log

    again = processes.run(*command, "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["succeeded"] == 4
    assert len(ledger(url)["tasks"]) == 4  # nothing created twice


def batch_name(output: Path) -> str:
    from miocreate_async._cli._batch import _batch_name

    return _batch_name(output)


def test_a_redis_batch_keeps_to_its_max_tasks(
    redis_url: str, processes: Processes, tmp_path: Path
) -> None:
    jobs = write_jobs(tmp_path / "jobs", 4)
    url = start_emulator(processes, "--latency", "0.1")
    start_worker(processes, redis_url, 0)
    out = tmp_path / "out"
    command: tuple[str, ...] = (
        "batch",
        str(jobs),
        "--face",
        str(tmp_path / "face.png"),
        "-o",
        str(out),
    )
    command += ("--redis", redis_url, "--max-tasks", "2", "--json")
    capped = processes.run(*command)
    assert capped.returncode == 1, capped.stdout + capped.stderr
    report = json.loads(capped.stdout)
    assert (report["succeeded"], report["failed"]) == (2, 2)
    assert len(ledger(url)["tasks"]) == 2
