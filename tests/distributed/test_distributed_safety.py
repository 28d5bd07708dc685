"""A Redis that could lose a batch is refused at start, by the driver and by every worker; a
batch whose records disappear is reported lost, never finished, and none of its jobs is
created again."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from redis.asyncio import Redis

from miocreate_async import SwapJob
from miocreate_async.distributed import (
    BatchLostError,
    DistributedBatch,
    UnsafeRedisError,
    Worker,
)
from miocreate_async.distributed._broker import QUEUE, kick, make_broker
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.processes]

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(folder: Path, *settings: str, port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server on ``port`` (a free one by default) keeping its files in ``folder``."""
    server = shutil.which("redis-server")
    assert server is not None
    folder.mkdir(exist_ok=True)
    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--save", "", "--loglevel", "warning", *settings],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _ping(port):
        assert process.poll() is None, "redis did not start"
        assert time.monotonic() < deadline, "redis did not answer"
        time.sleep(0.02)
    return process, f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def unsafe_redis(tmp_path: Path) -> Iterator[str]:
    """The issue's Redis: no append-only file, keys evicted when memory is full."""
    process, url = start_redis(
        tmp_path / "unsafe",
        "--appendonly", "no", "--appendfsync", "everysec",
        "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru",
    )  # fmt: skip
    yield url
    process.kill()
    process.wait()


def batch(url: str, name: str = "b", **options: object) -> DistributedBatch:
    return DistributedBatch(
        url,
        batch=name,
        base_url="http://127.0.0.1:9",
        client_id="c",
        **options,  # type: ignore[arg-type]
    )


async def test_the_driver_and_a_worker_refuse_a_redis_that_can_lose_the_batch(
    unsafe_redis: str,
) -> None:
    with pytest.raises(UnsafeRedisError) as refused:
        async with batch(unsafe_redis):
            pass
    assert refused.value.settings == (
        "appendonly no",
        "appendfsync everysec",
        "maxmemory-policy allkeys-lru",
    )
    assert 'durability="unchecked"' in str(refused.value)
    worker = Worker(unsafe_redis, client_id="c", client_secret="s", base_url="http://127.0.0.1:9")
    with pytest.raises(UnsafeRedisError, match="appendonly no"):
        await worker.run()
    # The explicit choice: nothing is checked; nothing was written before.
    async with batch(unsafe_redis, durability="unchecked") as opened:
        assert await opened.journal.total() == 0


async def test_everysec_passes_only_by_the_explicit_choice(tmp_path: Path) -> None:
    process, url = start_redis(tmp_path / "r", "--appendonly", "yes", "--appendfsync", "everysec")
    try:
        with pytest.raises(UnsafeRedisError) as refused:
            async with batch(url):
                pass
        assert refused.value.settings == ("appendfsync everysec",)
        async with batch(url, durability="everysec"):
            pass
    finally:
        process.kill()
        process.wait()


async def test_a_redis_that_does_not_permit_config_says_so_and_the_opt_in_passes(
    tmp_path: Path,
) -> None:
    process, url = start_redis(tmp_path / "r", "--rename-command", "CONFIG", "")
    try:
        with pytest.raises(UnsafeRedisError, match="CONFIG GET is not permitted") as refused:
            async with batch(url):
                pass
        assert refused.value.settings == ("CONFIG",)
        async with batch(url, durability="unchecked"):
            pass
    finally:
        process.kill()
        process.wait()


def test_the_cli_names_the_unsafe_settings(unsafe_redis: str, tmp_path: Path) -> None:
    face = write_sample_face(tmp_path / "face.png", seed=1)
    (tmp_path / "in").mkdir()
    write_sample_photo(tmp_path / "in" / "p.jpg", seed=1)
    run = subprocess.run(
        [sys.executable, "-c", CLI, "batch", str(tmp_path / "in"), "--face", str(face),
         "-o", str(tmp_path / "out"), "--redis", unsafe_redis],
        capture_output=True, text=True, timeout=60,
        env={"MIOCREATE_CLIENT_ID": "c", "MIOCREATE_CLIENT_SECRET": "s", "PATH": "/usr/bin"},
    )  # fmt: skip
    assert run.returncode != 0
    assert "appendonly no" in run.stderr
    assert "maxmemory-policy allkeys-lru" in run.stderr
    assert "--durability unchecked" in run.stderr


async def test_a_batch_whose_records_are_gone_is_lost_not_finished(
    redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    face = write_sample_face(tmp_path / "face.png", seed=1)
    jobs = [SwapJob(write_sample_photo(tmp_path / f"p{i}.jpg", seed=i), face) for i in range(3)]
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        async with Emulator(seed=1, data_dir=tmp_path / "emu") as emu:
            driver = DistributedBatch(redis_url, batch="gone", base_url=emu.url, client_id="c")
            async with driver:
                assert await driver.submit(jobs) == 3
                # A Redis restarted without its data (or flushed) lost the batch's records;
                # the stream of messages is there again, as after a partial restore.
                await redis.flushall()
                broker = make_broker(redis_url)
                await broker.startup()
                for index in range(3):
                    await kick(broker, "gone", f"job{index}")
                await broker.shutdown()
                with pytest.raises(BatchLostError, match="'gone' was lost"):
                    [outcome async for outcome in driver.outcomes()]
                with pytest.raises(BatchLostError):
                    await driver.submit(jobs)
                assert await redis.keys("miocreate:{gone}:job:*") == []  # nothing re-created

            caplog.set_level(logging.ERROR, logger="miocreate_async.distributed")
            worker = Worker(
                redis_url,
                client_id=emu.client_id,
                client_secret=emu.client_secret,
                base_url=emu.url,
                claim_idle=1.0,
            )
            drain = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(worker.run, drain)
                with anyio.fail_after(20):
                    # Every message read and acknowledged: none left to redeliver for ever.
                    while True:
                        group_info = (await redis.xinfo_groups(QUEUE))[0]
                        if group_info["lag"] == 0 and group_info["pending"] == 0:
                            break
                        await anyio.sleep(0.1)
                drain.set()
            assert emu.ledger["tasks"] == []
    finally:
        await redis.aclose()
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1, [r.getMessage() for r in caplog.records]  # once, not per message
    assert "'gone'" in dropped[0].getMessage()
