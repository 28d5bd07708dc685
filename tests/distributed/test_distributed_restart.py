"""A Redis restarted twice mid-batch (same port, its append-only file kept): the workers and the
driver reconnect and go on; every job ends once, nothing is created twice."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import anyio
import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from miocreate_async import PollPolicy, SwapJob
from miocreate_async.distributed import DistributedBatch, DistributedOutcome, Worker
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

from .test_distributed_safety import start_redis

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.processes]

FAST_POLL = PollPolicy(first=0.05, minimum=0.05, maximum=0.2, settle=0.1)
SAFE = ("--appendonly", "yes", "--appendfsync", "always")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def restart(process: subprocess.Popen[bytes], folder: Path, port: int) -> subprocess.Popen[bytes]:
    process.terminate()  # a clean shutdown: the append-only file is complete
    process.wait(timeout=20)
    time.sleep(0.5)  # away for a while
    return start_redis(folder, *SAFE, port=port)[0]


async def test_a_batch_goes_on_through_two_redis_restarts(tmp_path: Path) -> None:
    face = write_sample_face(tmp_path / "face.png", seed=1)
    jobs = [SwapJob(write_sample_photo(tmp_path / f"p{i}.jpg", seed=i), face) for i in range(30)]
    folder = tmp_path / "redis"
    process, url = start_redis(folder, *SAFE)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    restarts = 0
    try:
        async with Emulator(latency=(0.3, 0.8), seed=1, data_dir=tmp_path / "emu") as emu:
            drain = anyio.Event()
            outcomes: list[DistributedOutcome] = []
            async with anyio.create_task_group() as group:
                for _ in range(2):
                    worker = Worker(
                        url,
                        concurrency=6,
                        client_id=emu.client_id,
                        client_secret=emu.client_secret,
                        base_url=emu.url,
                        lease=3.0,
                        claim_idle=3.0,
                        poll=FAST_POLL,
                    )
                    group.start_soon(worker.run, drain)
                driver = DistributedBatch(
                    url, batch="restarts", base_url=emu.url, client_id=emu.client_id, timeout=120
                )
                async with driver:
                    assert await driver.submit(jobs) == 30
                    with anyio.fail_after(120):
                        async for outcome in driver.outcomes():
                            outcomes.append(outcome)
                            if len(outcomes) in (6, 16):
                                # In a thread: the workers and the driver meet the restart.
                                process = await anyio.to_thread.run_sync(
                                    restart, process, folder, port
                                )
                                restarts += 1
                drain.set()
            tasks = emu.ledger["tasks"]
    finally:
        process.kill()
        process.wait()
    assert restarts == 2
    by_job = {o.job_id for o in outcomes}
    assert len(by_job) == 30
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    main_keys = [task["request"]["main_key"] for task in tasks]
    assert len(main_keys) == len(set(main_keys)) == 30  # nothing created twice
