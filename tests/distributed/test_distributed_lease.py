"""A worker paused past its lease (SIGSTOP) against another owner (review case 4): it does not
send a creation once too little of its lease is left, on its own clock; and a creation's reply
that comes after the job was taken over is still recorded, then waited for."""

from __future__ import annotations

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

from miocreate_async import Key, SwapJob
from miocreate_async.distributed import DistributedBatch
from miocreate_async.distributed._journal import RedisJournal
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"
LEASE = 2.0
#: How long the emulator holds the request the worker is paused on.
HELD = 3.0
BATCH = "paused"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def arrived(emulator: Emulator, operation: str) -> bool:
    """The emulator holds a request of this operation (its reply delayed)."""
    requests = emulator.ledger["requests"]
    return any(r["operation"] == operation and r["fault"] == "slow" for r in requests)


def the_job(redis_url: str) -> dict[str, str]:
    import redis

    (key,) = _job_keys(redis_url)
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return dict(client.hgetall(key))


def take_over(redis_url: str, job_id: str) -> str:
    """What another worker's reaper and claim do once the lease ended."""

    async def claim() -> str:
        from redis.asyncio import Redis

        async with Redis.from_url(redis_url, decode_responses=True) as client:
            return (await RedisJournal(client, BATCH).claim(job_id, "other", LEASE)).outcome

    return anyio.run(claim)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(data_dir=tmp_path / "emulator", seed=1).run_in_thread() as emulator:
        yield emulator


def submit(emulator: Emulator, redis_url: str, tmp_path: Path, paused: str) -> None:
    async def run() -> None:
        photo = write_sample_photo(tmp_path / "photo.jpg", seed=1, size=(160, 120))
        face = write_sample_face(tmp_path / "face.png", seed=1)
        async with emulator.client() as client:
            image, new_face = await client.upload(photo), await client.upload(face)
        # Held long enough for the test to see it arrive (the ledger) and pause the worker
        # before its reply, however loaded the machine.
        if paused == "before-sending":
            # The worker's first request, before creating: its token.
            emulator.scenario("token", fault="slow", delay=HELD)
        else:
            emulator.scenario("image_swap", fault="slow", delay=HELD)
        async with DistributedBatch(
            redis_url,
            batch=BATCH,
            base_url=emulator.url,
            client_id=emulator.client_id,
            timeout=60,
        ) as batch:
            await batch.submit([SwapJob(media=Key(image), face=Key(new_face), kind="image")])

    anyio.run(run)


@pytest.mark.parametrize("paused", ["before-sending", "while-sending"])
def test_a_worker_paused_past_its_lease_pays_nothing_unrecorded(
    served: Emulator, redis_url: str, tmp_path: Path, paused: str
) -> None:
    env = {
        **os.environ,
        "MIOCREATE_BASE_URL": served.url,
        "MIOCREATE_CLIENT_ID": served.client_id,
        "MIOCREATE_CLIENT_SECRET": served.client_secret,
    }
    log = (tmp_path / "worker.log").open("wb")
    command = [sys.executable, "-c", CLI, "worker", "--redis", redis_url, "-j", "2"]
    command += ["--lease", str(LEASE), "--claim-idle", "3", "--poll-maximum", "0.3"]
    worker = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = "jobs at once"  # what the worker says once it listens
        wait_for(lambda: ready in (tmp_path / "worker.log").read_text(), 30, "the worker")
        submit(served, redis_url, tmp_path, paused)
        wait_for(lambda: the_job(redis_url)["state"] == "submitting", 30, "the intent")
        # Paused once the request is at the emulator, its reply held: not after a fixed sleep
        # (under load the worker may not have sent the creation yet, and never sends it then).
        held = "token" if paused == "before-sending" else "image_swap"
        wait_for(lambda: arrived(served, held), 30, f"the {held} request")
        worker.send_signal(signal.SIGSTOP)  # a pause: no renewal, no reaper, nothing
        time.sleep(LEASE + 1.0)
        (job_key,) = _job_keys(redis_url)
        job_id = job_key.rsplit(":", 1)[1]
        seen = the_job(redis_url)
        assert take_over(redis_url, job_id) == "uncertain", seen
        worker.send_signal(signal.SIGCONT)
        if paused == "while-sending":
            # The reply is recorded after all, and the task waited for by its (new) owner.
            wait_for(lambda: the_job(redis_url)["state"] == "succeeded", 30, "the result")
        else:
            time.sleep(2.0)
    finally:
        worker.send_signal(signal.SIGCONT)
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
    created = [int(task["id"]) for task in served.ledger["tasks"]]
    job = the_job(redis_url)
    recorded = [int(job["task_id"])] if job.get("task_id") else []
    # Every task created is recorded on the job: none paid and known only to a log line.
    assert created == recorded, (tmp_path / "worker.log").read_text(errors="replace")
    if paused == "before-sending":
        assert created == []
        assert job["state"] == "uncertain"


def _job_keys(redis_url: str) -> list[str]:
    import redis

    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return list(client.scan_iter(match=f"miocreate:{{{BATCH}}}:job:*"))
