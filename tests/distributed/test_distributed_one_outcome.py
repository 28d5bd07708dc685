"""Every job one outcome, with a worker paused (SIGSTOP) past its lease while its creation is
out: the job is taken over as uncertain, and the creation's late reply either comes before the
driver hands the uncertain outcome out (held back until every other job is finished: the job
is then handed out once, with its task's result) or after (the uncertain outcome stays the
job's only one; the task is recorded on it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from miocreate_async import Key, SwapJob
from miocreate_async._journal import JobState
from miocreate_async.distributed import DistributedBatch, DistributedOutcome
from miocreate_async.distributed._codec import encode_job
from miocreate_async.distributed._journal import RedisJournal
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"
LEASE = 2.0
BATCH = "one-outcome"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def record(redis_url: str, job_id: str) -> dict[str, str]:
    import redis

    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return dict(client.hgetall(f"miocreate:{{{BATCH}}}:job:{job_id}"))


def take_over(redis_url: str, job_id: str) -> str:
    """What another worker's reaper and claim do once the lease ended."""

    async def claim() -> str:
        from redis.asyncio import Redis

        async with Redis.from_url(redis_url, decode_responses=True) as client:
            return (await RedisJournal(client, BATCH).claim(job_id, "other", LEASE)).outcome

    return anyio.run(claim)


def creation_held(emulator: Emulator) -> bool:
    """The emulator holds a creation request (its reply delayed)."""
    requests = emulator.ledger["requests"]
    return any(r["operation"] == "image_swap" and r["fault"] == "slow" for r in requests)


class Driver(threading.Thread):
    """A ``DistributedBatch`` in a thread of its own: submits ``first``, waits for ``go``,
    submits ``then`` (if any), and reads every outcome."""

    def __init__(
        self, emulator: Emulator, redis_url: str, first: SwapJob, then: SwapJob | None
    ) -> None:
        super().__init__(daemon=True)
        self.emulator, self.redis_url, self.first, self.then = emulator, redis_url, first, then
        self.go = threading.Event()
        self.outcomes: list[DistributedOutcome] = []
        self.error: BaseException | None = None

    def batch(self) -> DistributedBatch:
        return DistributedBatch(
            self.redis_url,
            batch=BATCH,
            base_url=self.emulator.url,
            client_id=self.emulator.client_id,
            timeout=60,
        )

    def run(self) -> None:
        async def drive() -> None:
            async with self.batch() as batch:
                await batch.submit([self.first])
                await anyio.to_thread.run_sync(self.go.wait)
                if self.then is not None:
                    await batch.submit([self.then])
                with anyio.fail_after(60):
                    async for outcome in batch.outcomes():
                        self.outcomes.append(outcome)

        try:
            anyio.run(drive)
        except BaseException as error:  # reported by the test
            self.error = error


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(data_dir=tmp_path / "emulator", seed=1).run_in_thread() as emulator:
        yield emulator


@pytest.fixture
def worker(served: Emulator, redis_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "MIOCREATE_BASE_URL": served.url,
        "MIOCREATE_CLIENT_ID": served.client_id,
        "MIOCREATE_CLIENT_SECRET": served.client_secret,
    }
    command = [sys.executable, "-c", CLI, "worker", "--redis", redis_url, "-j", "2"]
    command += ["--lease", str(LEASE), "--claim-idle", "3", "--poll-maximum", "0.3"]
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = "jobs at once"  # what the worker says once it listens
        wait_for(lambda: ready in (tmp_path / "worker.log").read_text(), 30, "the worker")
        yield process
    finally:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def jobs(emulator: Emulator, tmp_path: Path, count: int) -> list[SwapJob]:
    async def upload() -> list[SwapJob]:
        face = write_sample_face(tmp_path / "face.png", seed=1)
        async with emulator.client() as client:
            face_key = Key(await client.upload(face))
            made = []
            for seed in range(1, count + 1):
                photo = write_sample_photo(tmp_path / f"p{seed}.jpg", seed=seed, size=(160, 120))
                made.append(SwapJob(media=Key(await client.upload(photo)), face=face_key))
            return made

    made = anyio.run(upload)
    # The first creation's reply is held: long enough to pause the worker before it comes.
    emulator.scenario("image_swap", fault="slow", delay=3.0)
    return made


def pause_past_the_lease(
    worker: subprocess.Popen[bytes], emulator: Emulator, redis_url: str, job_id: str
) -> None:
    """The worker paused while its creation is out, and the job taken over: uncertain."""
    wait_for(lambda: creation_held(emulator), 30, "the creation request")
    worker.send_signal(signal.SIGSTOP)
    time.sleep(LEASE + 1.0)
    assert take_over(redis_url, job_id) == "uncertain", record(redis_url, job_id)


def finished(driver: Driver) -> list[DistributedOutcome]:
    driver.join(90)
    assert not driver.is_alive(), "outcomes() did not end"
    if driver.error is not None:
        raise driver.error
    return driver.outcomes


def tasks(emulator: Emulator) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = emulator.ledger["tasks"]
    return tasks


def test_a_late_reply_before_the_hand_out_gives_the_job_its_tasks_outcome_only(
    served: Emulator, redis_url: str, tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    late, other = jobs(served, tmp_path, 2)
    late_id, other_id = encode_job(late)[0], encode_job(other)[0]
    driver = Driver(served, redis_url, late, other)
    driver.start()
    pause_past_the_lease(worker, served, redis_url, late_id)
    driver.go.set()  # the other job is queued while the worker is paused: unfinished
    wait_for(lambda: record(redis_url, other_id).get("state") == "pending", 10, "the other job")
    time.sleep(1.5)  # the driver reads the uncertain outcome meanwhile, and holds it back
    assert driver.outcomes == []
    worker.send_signal(signal.SIGCONT)
    outcomes = finished(driver)
    # One outcome per job: the late one's is its task's result, never "uncertain" first.
    assert sorted(o.job_id or "" for o in outcomes) == sorted([late_id, other_id])
    assert [o.state for o in outcomes] == [JobState.SUCCEEDED, JobState.SUCCEEDED]
    (late_outcome,) = [o for o in outcomes if o.job_id == late_id]
    created = {task["id"] for task in tasks(served)}
    assert len(created) == 2
    assert late_outcome.task_id in created
    assert record(redis_url, late_id)["task_id"] == str(late_outcome.task_id)


def test_an_uncertain_outcome_handed_out_stays_the_jobs_only_one(
    served: Emulator, redis_url: str, tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    (late,) = jobs(served, tmp_path, 1)
    late_id = encode_job(late)[0]
    driver = Driver(served, redis_url, late, None)
    driver.start()
    pause_past_the_lease(worker, served, redis_url, late_id)
    driver.go.set()
    # Nothing else unfinished: handed out uncertain at once, while the worker is still paused.
    (outcome,) = finished(driver)
    assert outcome.state is JobState.UNCERTAIN
    assert type(outcome.error).__name__ == "SubmissionUncertainError"
    worker.send_signal(signal.SIGCONT)
    # The late reply is recorded on the job, which stays uncertain: never run again.
    wait_for(lambda: "task_id" in record(redis_url, late_id), 30, "the late task recorded")
    (task,) = tasks(served)
    assert record(redis_url, late_id)["task_id"] == str(task["id"])
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "handed out uncertain; recorded on the job" in log

    async def again() -> tuple[list[DistributedOutcome], DistributedOutcome | None]:
        async with Driver(served, redis_url, late, None).batch() as batch:
            with anyio.fail_after(30):
                more = [o async for o in batch.outcomes()]
            return more, await batch.outcome(late_id)

    more, found = anyio.run(again)
    assert more == []  # read already: no second outcome
    assert found is not None
    assert found.state is JobState.UNCERTAIN
    assert found.task_id == task["id"]
    assert record(redis_url, late_id)["state"] == "uncertain"
    # The user sees the task to collect among the uncertain jobs.
    status = subprocess.run(
        [sys.executable, "-c", CLI, "journal", "status", "--redis", redis_url, "--batch", BATCH],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"(job {late_id}, task {task['id']})" in status.stdout
    assert "A distributed batch never sends them again." in status.stdout
