"""The swap task on a user's own Taskiq broker (``register``), run by a Taskiq receiver as
``taskiq worker`` runs it, with Taskiq's retry middleware: a task that errors is sent again, and
still no job is created twice (the emulator's ledger)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from taskiq import TaskiqMessage, TaskiqResult
from taskiq.middlewares import SimpleRetryMiddleware
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from miocreate_async import PollPolicy, SwapJob
from miocreate_async.distributed import DistributedBatch, Worker, register
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAST_POLL = PollPolicy(first=0.05, minimum=0.05, maximum=0.2, settle=0.1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class LostAckReplies(RedisStreamBroker):
    """A user's broker whose first acknowledgement of each message reaches Redis and then
    fails (its reply lost): the task errors after its job started."""

    failed: set[str]

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        acknowledge = super()._ack_generator(id, queue_name)

        async def ack() -> None:
            await acknowledge()
            if id not in self.failed:
                self.failed.add(id)
                raise ConnectionError("the reply to XACK was lost")

        return ack


class CountedRetries(SimpleRetryMiddleware):
    sent = 0

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        if int(message.labels.get("_retries", 0)) + 1 < self.default_retry_count:
            CountedRetries.sent += 1
        await super().on_error(message, result, exception)


async def test_a_retry_middleware_on_the_users_broker_never_creates_twice(
    redis_url: str, tmp_path: Path
) -> None:
    face = write_sample_face(tmp_path / "face.png", seed=1)
    jobs = [SwapJob(write_sample_photo(tmp_path / f"p{i}.jpg", seed=i), face) for i in range(6)]
    broker = LostAckReplies(
        redis_url, queue_name="my-app", consumer_group_name="my-app", consumer_id="0"
    ).with_middlewares(CountedRetries(default_retry_count=3, default_retry_label=True))
    broker.failed = set()
    async with Emulator(latency=(0.3, 0.6), seed=1, data_dir=tmp_path / "emu") as emu:
        worker = Worker(
            redis_url,
            concurrency=4,
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            base_url=emu.url,
            lease=2.0,
            claim_idle=2.0,
            poll=FAST_POLL,
        )
        assert register(broker, worker) is worker
        # What ``taskiq worker app:broker --max-async-tasks 4`` does.
        broker.is_worker_process = True
        await broker.startup()
        stop = asyncio.Event()
        receiver = Receiver(broker, max_async_tasks=4, run_startup=False)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(receiver.listen, stop)
                batch = DistributedBatch(
                    redis_url,
                    batch="mine",
                    base_url=emu.url,
                    client_id=emu.client_id,
                    timeout=60,
                    broker=broker,
                )
                async with batch:
                    assert await batch.submit(jobs) == 6
                    with anyio.fail_after(60):
                        outcomes = [outcome async for outcome in batch.outcomes()]
                stop.set()
        finally:
            await broker.shutdown()  # the worker finishes its jobs (none left) and closes
        tasks = emu.ledger["tasks"]
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert sorted(o.index for o in outcomes) == list(range(6))
    # The middleware did send messages again (one per failed first acknowledgement)...
    assert CountedRetries.sent >= 6
    # ... and each job was created once.
    images = [task["request"]["main_key"] for task in tasks]
    assert len(images) == len(set(images)) == 6
