"""The stall of issue 23: a worker SIGKILLed after it read messages from the stream, before it
claimed their jobs in the journal, left them pending (unacknowledged) under its consumer name.
taskiq-redis reclaims a dead consumer's messages (XAUTOCLAIM) only after a read that returned
new messages, so once the stream was otherwise drained nobody ever took them: the batch never
ended. The workers now reclaim idle messages on their own clock, stream busy or not."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from redis.asyncio import Redis

from miocreate_async import PollPolicy, SwapJob
from miocreate_async.distributed import DistributedBatch, Worker
from miocreate_async.distributed._broker import GROUP, QUEUE
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.processes]

FAST_POLL = PollPolicy(first=0.05, minimum=0.05, maximum=0.2, settle=0.1)

#: A consumer that reads messages of the group, never acknowledges them, and waits to be killed.
GREEDY = """
import sys, redis
r = redis.Redis.from_url(sys.argv[1])
got = r.xreadgroup(sys.argv[2], "doomed-consumer", {sys.argv[3]: ">"}, count=int(sys.argv[4]))
print(sum(len(m) for _, m in got), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_messages_of_a_killed_worker_are_taken_over_when_the_stream_is_idle(
    redis_url: str, tmp_path: Path
) -> None:
    face = write_sample_face(tmp_path / "face.png", seed=1)
    jobs = [SwapJob(write_sample_photo(tmp_path / f"p{i}.jpg", seed=i), face) for i in range(8)]
    async with Emulator(latency=0.02, seed=1, data_dir=tmp_path / "emu") as emu:
        batch = DistributedBatch(
            redis_url, batch="stall", base_url=emu.url, client_id=emu.client_id, timeout=60
        )
        async with batch:
            assert await batch.submit(jobs) == 8
            # A worker process reads 3 messages, then is SIGKILLed before claiming their jobs.
            doomed = subprocess.Popen(
                [sys.executable, "-c", GREEDY, redis_url, GROUP, QUEUE, "3"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert doomed.stdout is not None
                assert doomed.stdout.readline().strip() == "3"
            finally:
                doomed.send_signal(signal.SIGKILL)
                doomed.communicate()
            drain = anyio.Event()
            worker = Worker(
                redis_url,
                concurrency=4,
                client_id=emu.client_id,
                client_secret=emu.client_secret,
                base_url=emu.url,
                lease=2.0,
                claim_idle=1.0,
                poll=FAST_POLL,
            )
            started = time.monotonic()
            async with anyio.create_task_group() as group:
                group.start_soon(worker.run, drain)
                # Bounded: the 3 orphaned messages are idle for 1 s, then reclaimed; without
                # the fix the 5 others finish and the batch waits forever for the last 3.
                with anyio.fail_after(20):
                    outcomes = [outcome async for outcome in batch.outcomes()]
                    # Both streams stay bounded: read outcomes and finished messages dropped.
                    redis = Redis.from_url(redis_url)
                    try:
                        assert await redis.xlen(batch.journal.outcomes_key) == 1
                        while True:
                            if await redis.xlen(QUEUE) <= 1:
                                break
                            await anyio.sleep(0.1)
                    finally:
                        await redis.aclose()
                drain.set()
            took = time.monotonic() - started
        tasks = emu.ledger["tasks"]
    assert sorted(o.index for o in outcomes) == list(range(8))
    assert all(o.ok for o in outcomes), outcomes
    assert len(tasks) == 8  # nothing created twice
    assert took < 20
