"""Three worker processes, a driver and the emulator, each in its own process, 300 jobs: one
worker is SIGKILLed mid-batch, the driver is SIGKILLed and started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from miocreate_async.emulator import write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

DRIVER = Path(__file__).with_name("distributed_driver.py")
#: ``miocreate`` (the console script), run by this interpreter.
CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"
CLIENT = {
    "MIOCREATE_CLIENT_ID": "emulator-client-id",
    "MIOCREATE_CLIENT_SECRET": "emulator-client-secret",
}


class Processes:
    """Starts processes with their output in files; stops every one still running at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, **CLIENT, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        log.close()
        self.running.append(process)
        return process

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the command line to its end; its output captured."""
        return subprocess.run(
            [sys.executable, "-c", CLI, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    group = Processes(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_emulator(processes: Processes, *options: str) -> str:
    data = processes.folder / "emulator-data"
    processes.start(
        "emulator",
        "-m", "miocreate_async.emulator", "--port", "0", "--seed", "1",
        "--data-dir", str(data), *options,
    )  # fmt: skip
    prefix = "MioCreate emulator serving at "
    wait_for(lambda: prefix in processes.log("emulator"), 30, "the emulator")
    url = processes.log("emulator").split(prefix, 1)[1].split()[0]
    processes.env["MIOCREATE_BASE_URL"] = url
    return url


def start_worker(
    processes: Processes, redis_url: str, n: int, *options: str
) -> subprocess.Popen[bytes]:
    return processes.start(
        f"worker{n}",
        "-c", CLI, "worker", "--redis", redis_url,
        "-j", "8", "--lease", "2", "--claim-idle", "3", "--poll-maximum", "0.3", *options,
    )  # fmt: skip


def ledger(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_emulator/ledger", timeout=30) as reply:
        data: dict[str, Any] = json.load(reply)
        return data


def write_jobs(folder: Path, count: int) -> Path:
    folder.mkdir()
    write_sample_face(folder / "face.png", seed=1)
    for i in range(count):
        # Small photos: the emulator renders each swap, and this machine has two cores.
        write_sample_photo(folder / f"p{i:04d}.jpg", seed=i, size=(160, 120))
    return folder


def outcomes(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def images_submitted(book: dict[str, Any]) -> Counter[str]:
    """How many tasks were created for each image content (by its upload's sha256)."""
    sha_of = {upload["key"]: upload["sha256"] for upload in book["uploads"]}
    return Counter(sha_of[task["request"]["main_key"]] for task in book["tasks"])


def jobs_claimed_again(redis_url: str, batch: str) -> list[str]:
    """Jobs of the batch claimed more than once: taken over from a worker that stopped."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        prefix = f"miocreate:{{{batch}}}:job:"
        return [
            key.removeprefix(prefix)
            for key in client.scan_iter(match=prefix + "*", count=1000)
            if int(client.hget(key, "epoch") or 0) >= 2
        ]
    finally:
        client.close()


def drain(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGINT)
    for worker in workers:
        worker.wait(timeout=30)


def test_a_killed_worker_and_a_restarted_driver_lose_nothing_and_pay_nothing_twice(
    redis_url: str, processes: Processes, tmp_path: Path
) -> None:
    jobs = write_jobs(tmp_path / "jobs", 300)
    url = start_emulator(processes, "--latency", "0.3-0.9")
    workers = [start_worker(processes, redis_url, n) for n in range(3)]
    out = tmp_path / "outcomes.jsonl"
    driver_args = (str(DRIVER), redis_url, "scale", str(jobs), str(out))
    driver = processes.start("driver", *driver_args)

    wait_for(lambda: len(outcomes(out)) >= 40, 60, "40 outcomes")
    workers[0].kill()  # SIGKILL: its jobs in flight are taken over after their lease
    wait_for(lambda: len(outcomes(out)) >= 100, 60, "100 outcomes")
    driver.kill()
    driver.wait()
    driver = processes.start("driver", *driver_args)
    assert driver.wait(timeout=90) == 0, processes.log("driver")
    drain(workers[1:])
    book = ledger(url)

    lines = outcomes(out)
    by_job: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_job.setdefault(line["job"], []).append(line)
    # Every job has an outcome; the one being written when the driver was killed may come twice.
    assert len(by_job) == 300
    assert len(lines) - len(by_job) <= 1
    assert all(
        len({json.dumps(x) for x in same if not x["resumed"]}) <= 1 for same in by_job.values()
    )
    final = {job: same[-1] for job, same in by_job.items()}
    # No image was submitted twice.
    assert max(images_submitted(book).values()) == 1
    # Only jobs lost while "submitting" may be uncertain; nothing else fails.
    states = Counter(line["state"] for line in final.values())
    assert states["succeeded"] + states["uncertain"] == 300, states
    assert states["uncertain"] <= 8
    assert {line["error"] for line in final.values() if line["state"] == "uncertain"} <= {
        "SubmissionUncertainError"
    }
    # Every task the emulator created was collected, the dead worker's included, except for the
    # uncertain jobs' (their tasks' ids were never recorded).
    collected = {line["task_id"] for line in final.values() if line["state"] == "succeeded"}
    created = {task["id"] for task in book["tasks"]}
    assert collected <= created
    assert len(created - collected) <= states["uncertain"]
    # The dead worker's jobs were claimed again by the others (a later epoch) and finished.
    taken_over = jobs_claimed_again(redis_url, "scale")
    assert taken_over
    assert all(final[job]["state"] in ("succeeded", "uncertain") for job in taken_over)
