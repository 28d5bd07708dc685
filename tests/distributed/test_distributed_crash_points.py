"""Crash-point exploration of the shared (Redis) journal: every write a worker makes for a job
(its claim, the intent, the task id, the result; before and after each) is numbered; for each
point in turn a worker process is (a) SIGKILLed there (at the intent: while the creation is
out) and (b) made to fail that write (Redis unreachable), and another worker takes the job
over. At every point: no task created twice (the emulator's ledger), and the task created ends
recorded with its result, or the job is reported uncertain."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from miocreate_async import Key, PollPolicy, SwapJob
from miocreate_async.distributed import DistributedBatch, Worker
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

CHILD = Path(__file__).with_name("crash_point_worker.py")
FINAL = {"succeeded", "failed", "uncertain"}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def fresh_emulator() -> Iterator[Emulator]:
    """An emulator for one point: a creation still out when its worker was killed must not land
    in the next point's count."""
    with Emulator(latency=0.02, seed=5).run_in_thread() as emulator:
        yield emulator


class Point:
    """One job of its own batch, a worker that stops at a point, another that takes over."""

    def __init__(self, emulator: Emulator, redis_url: str, folder: Path, name: str) -> None:
        self.emulator, self.redis_url, self.folder, self.batch = emulator, redis_url, folder, name
        self.env = {
            **os.environ,
            "MIOCREATE_BASE_URL": emulator.url,
            "MIOCREATE_CLIENT_ID": emulator.client_id,
            "MIOCREATE_CLIENT_SECRET": emulator.client_secret,
        }
        self.tasks_before = self.tasks()

    def tasks(self) -> set[int]:
        return {int(task["id"]) for task in self.emulator.ledger["tasks"]}

    def job(self) -> dict[str, str]:
        import redis

        with redis.Redis.from_url(self.redis_url, decode_responses=True) as client:
            keys = list(client.scan_iter(match=f"miocreate:{{{self.batch}}}:job:*"))
            return dict(client.hgetall(keys[0])) if keys else {}

    def points(self) -> list[str]:
        log = self.folder / f"{self.batch}.points"
        return log.read_text().splitlines() if log.exists() else []

    def start(self, keys: tuple[str, str], *options: str) -> subprocess.Popen[bytes]:
        log = self.folder / f"{self.batch}.log"
        with log.open("ab") as out:
            points = str(self.folder / f"{self.batch}.points")
            worker = subprocess.Popen(
                [sys.executable, str(CHILD), self.redis_url, points, self.batch, *options],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: "listening" in log.read_text(errors="replace"), 30, "the worker")
        self.submit(keys)
        return worker

    def submit(self, keys: tuple[str, str]) -> None:
        async def run() -> None:
            async with DistributedBatch(
                self.redis_url,
                batch=self.batch,
                base_url=self.emulator.url,
                client_id=self.emulator.client_id,
                timeout=30,
            ) as batch:
                job = SwapJob(media=Key(keys[0]), face=Key(keys[1]), kind="image")
                await batch.submit([job])

        anyio.run(run)

    def take_over(self, keys: tuple[str, str]) -> None:
        """The driver submits again (as a restarted one does: a job still pending is queued
        again) and another worker, in this process, runs until the job has ended."""
        self.submit(keys)

        async def run() -> None:
            drain = anyio.Event()
            worker = Worker(
                self.redis_url,
                concurrency=2,
                client_id=self.emulator.client_id,
                client_secret=self.emulator.client_secret,
                base_url=self.emulator.url,
                lease=1.0,
                claim_idle=1.5,
                poll=PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1),
            )
            async with anyio.create_task_group() as group:
                group.start_soon(worker.run, drain)
                with anyio.fail_after(30):
                    while self.job().get("state") not in FINAL:  # noqa: ASYNC110 - Redis
                        await anyio.sleep(0.05)
                drain.set()

        anyio.run(run)

    def check(self, point: str) -> None:
        job = self.job()
        created = sorted(self.tasks() - self.tasks_before)
        assert len(created) <= 1, f"{point}: the job's task was created twice: {created}"
        if job["state"] == "succeeded":
            assert created == [int(job["task_id"])], f"{point}: {job}"
        else:
            assert job["state"] == "uncertain", f"{point}: {job}"


def stop(worker: subprocess.Popen[bytes]) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGINT)
    try:
        return worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.wait()


# Some thirty runs of a child process, one per point: more than the default 120 s on a
# loaded machine.
@pytest.mark.timeout(360)
def test_every_crash_point_of_a_distributed_job(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = write_sample_photo(tmp_path / "photo.jpg", seed=2, size=(160, 120))
    face = write_sample_face(tmp_path / "face.png", seed=1)

    def upload(emulator: Emulator) -> tuple[str, str]:
        async def both() -> tuple[str, str]:
            async with emulator.client() as client:
                return await client.upload(photo), await client.upload(face)

        return anyio.run(both)

    with fresh_emulator() as emulator:
        keys = upload(emulator)
        clean = Point(emulator, redis_url, tmp_path, "clean")
        worker = clean.start(keys)
        wait_for(lambda: clean.job().get("state") in FINAL, 30, "the clean run")
        stop(worker)
        clean.check("no crash")
    points = clean.points()
    assert any("before submitting" in point for point in points)
    writes = [n for n, point in enumerate(points, 1) if point.split()[1] == "before"]
    killed = failed = 0
    for number, point in enumerate(points, 1):
        with fresh_emulator() as emulator:
            keys = upload(emulator)
            crash = Point(emulator, redis_url, tmp_path, f"kill-{number}")
            if point.endswith("after submitting"):
                emulator.scenario("image_swap", fault="slow", delay=0.5)  # out at the kill
            worker = crash.start(keys, "--kill-at", str(number))
            wait_for(lambda: worker.poll() is not None, 30, f"the kill at {point}")  # noqa: B023
            killed += worker.returncode == -9
            crash.take_over(keys)
            crash.check(f"killed at {point}")
    for number in writes:
        with fresh_emulator() as emulator:
            keys = upload(emulator)
            crash = Point(emulator, redis_url, tmp_path, f"fail-{number}")
            worker = crash.start(keys, "--fail-at", str(number))
            wait_for(lambda: len(crash.points()) >= number, 30, f"the failure at {number}")  # noqa: B023
            # What the worker makes of it: it goes on, or it stops; then it is stopped.
            time.sleep(0.5)
            stop(worker)
            crash.take_over(keys)
            crash.check(f"write failed at {points[number - 1]}")
            failed += 1
    with capsys.disabled():
        print(
            f"\ncrash points explored (Redis journal): {len(points)} kill points "
            f"({killed} reached), {failed} failed journal writes"
        )
    assert killed == len(points)
