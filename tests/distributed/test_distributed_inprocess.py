"""One worker and the driver in the test's loop, against the emulator and a real Redis."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from miocreate_async import InsufficientCreditsError, MioCreate, PollPolicy, SwapJob
from miocreate_async._journal import JobState
from miocreate_async.distributed import (
    DistributedBatch,
    DistributedOutcome,
    TaskBudgetError,
    Worker,
)
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"
FAST_POLL = PollPolicy(first=0.05, minimum=0.05, maximum=0.2, settle=0.1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def running_worker(
    redis_url: str, emu: Emulator, count: int = 1, rate_limit: float | None = None
) -> AsyncIterator[None]:
    """``count`` workers (each as a machine would run it), drained when the block ends."""
    drain = anyio.Event()
    async with anyio.create_task_group() as group:
        for _ in range(count):
            worker = Worker(
                redis_url,
                concurrency=8,
                client_id=emu.client_id,
                client_secret=emu.client_secret,
                base_url=emu.url,
                rate_limit=rate_limit,
                lease=2.0,
                claim_idle=3.0,
                poll=FAST_POLL,
                url_sources=["127.0.0.1"],  # the emulator's storage, for URL inputs
            )
            group.start_soon(worker.run, drain)
        yield
        drain.set()


def batch_of(
    redis_url: str,
    emu: Emulator,
    name: str,
    max_tasks: int | None = None,
    client: MioCreate | None = None,
) -> DistributedBatch:
    return DistributedBatch(
        redis_url,
        batch=name,
        base_url=emu.url,
        client_id=emu.client_id,
        timeout=60,
        max_tasks=max_tasks,
        client=client,
    )


def photos(folder: Path, count: int) -> list[SwapJob]:
    face = write_sample_face(folder / "face.png", seed=1)
    return [SwapJob(write_sample_photo(folder / f"p{i}.jpg", seed=i), face) for i in range(count)]


async def collect(batch: DistributedBatch) -> list[DistributedOutcome]:
    with anyio.fail_after(60):
        return [outcome async for outcome in batch.outcomes()]


async def test_a_batch_runs_on_a_worker_and_resubmitting_is_harmless(
    redis_url: str, tmp_path: Path
) -> None:
    jobs = photos(tmp_path, 6)
    async with Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emu") as emu:
        async with (
            emu.client() as client,
            running_worker(redis_url, emu),
            batch_of(redis_url, emu, "b1", client=client) as batch,
        ):
            assert await batch.submit(jobs) == 6
            assert await batch.submit(jobs) == 0
            outcomes = await collect(batch)
            saved = await outcomes[0].unwrap().download(tmp_path / "out/")
        tasks = emu.ledger["tasks"]
        uploads = emu.ledger["uploads"]
    assert sorted(o.index for o in outcomes) == list(range(6))
    assert all(o.ok and o.state is JobState.SUCCEEDED for o in outcomes), outcomes
    assert {str(o.job.image) for o in outcomes} == {str(j.image) for j in jobs}
    assert len(tasks) == 6
    # The face is uploaded once for the whole batch.
    face_uploads = [u for u in uploads if u["file_name"] == "face.png"]
    assert len(face_uploads) == 1
    assert batch.summary()[JobState.SUCCEEDED] == 6
    # Redis keeps keys, not signed URLs: the driver's client fetches a fresh one to download.
    assert saved.stat().st_size > 0


async def test_a_restarted_driver_resumes_reading_where_it_stopped(
    redis_url: str, tmp_path: Path
) -> None:
    jobs = photos(tmp_path, 4)
    emulator = Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emu")
    async with emulator as emu, running_worker(redis_url, emu):
        async with batch_of(redis_url, emu, "b2") as batch:
            await batch.submit(jobs)
            first = []
            async for outcome in batch.outcomes():
                first.append(outcome)
                if len(first) == 2:
                    break
        async with batch_of(redis_url, emu, "b2") as again:
            await again.submit(jobs)
            rest = await collect(again)
    # The outcome being handled when the reader stopped comes once more; none is lost.
    seen = [o.job_id for o in first] + [o.job_id for o in rest]
    assert len(set(seen)) == 4
    assert len(seen) <= 5


async def test_credits_run_out_everywhere_at_the_first_801(redis_url: str, tmp_path: Path) -> None:
    jobs = photos(tmp_path, 8)
    async with Emulator(latency=0.05, seed=1, credits=3, data_dir=tmp_path / "emu") as emu:
        async with running_worker(redis_url, emu, 3), batch_of(redis_url, emu, "b3") as batch:
            await batch.submit(jobs)
            outcomes = await collect(batch)
        created = len(emu.ledger["tasks"])
    succeeded = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    assert len(succeeded) == created == 3
    assert len(failed) == 5
    assert all(isinstance(o.error, InsufficientCreditsError) for o in failed)


async def test_max_tasks_caps_the_tasks_created(redis_url: str, tmp_path: Path) -> None:
    jobs = photos(tmp_path, 5)
    async with Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emu") as emu:
        async with (
            running_worker(redis_url, emu),
            batch_of(redis_url, emu, "b4", max_tasks=2) as batch,
        ):
            await batch.submit(jobs)
            outcomes = await collect(batch)
        assert len(emu.ledger["tasks"]) == 2
    assert sum(o.ok for o in outcomes) == 2
    assert all(isinstance(o.error, TaskBudgetError) for o in outcomes if not o.ok)


@pytest.mark.processes
async def test_the_cli_batch_runs_on_the_workers_of_a_redis(redis_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    jobs = photos(folder, 3)
    face = tmp_path / "face.png"
    (folder / "face.png").rename(face)
    out = tmp_path / "out"
    async with Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emu") as emu:
        env = {
            **os.environ,
            "MIOCREATE_BASE_URL": emu.url,
            "MIOCREATE_CLIENT_ID": emu.client_id,
            "MIOCREATE_CLIENT_SECRET": emu.client_secret,
        }
        command = [sys.executable, "-c", CLI, "batch", str(folder), "--face", str(face)]
        command += ["-o", str(out), "--redis", redis_url, "--json"]
        async with running_worker(redis_url, emu):
            with anyio.fail_after(60):
                done = await anyio.run_process(command, env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["succeeded"] == len(jobs) == 3
    assert sorted(path.name for path in out.iterdir()) == [
        "p0-swapped.jpg",
        "p1-swapped.jpg",
        "p2-swapped.jpg",
    ]


@pytest.mark.processes
async def test_the_redis_cli_batch_fits_a_long_output_name_before_paying(
    redis_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    write_sample_photo(folder / ("a" * 250 + ".jpg"), seed=1)
    face = write_sample_face(tmp_path / "face.png", seed=2)
    out = tmp_path / "out"
    async with Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emu") as emu:
        env = {
            **os.environ,
            "MIOCREATE_BASE_URL": emu.url,
            "MIOCREATE_CLIENT_ID": emu.client_id,
            "MIOCREATE_CLIENT_SECRET": emu.client_secret,
        }
        command = [sys.executable, "-c", CLI, "batch", str(folder), "--face", str(face)]
        command += ["-o", str(out), "--redis", redis_url, "--json"]
        async with running_worker(redis_url, emu):
            with anyio.fail_after(60):
                done = await anyio.run_process(command, env=env, check=False)
        tasks = len(emu.ledger["tasks"])
    assert done.returncode == 0, done.stderr.decode()
    (saved,) = [path.name for path in out.iterdir() if not path.name.startswith(".")]
    assert saved.startswith("aaaa")
    assert len(os.fsencode(saved)) <= 255
    assert tasks == 1


async def test_the_shared_limiter_keeps_the_workers_under_the_request_quota(
    redis_url: str, tmp_path: Path
) -> None:
    jobs = photos(tmp_path, 10)
    emulator = Emulator(latency=0.2, seed=1, request_quota=20, data_dir=tmp_path / "emu")
    async with (
        emulator as emu,
        running_worker(redis_url, emu, 2, rate_limit=16),
        batch_of(redis_url, emu, "b5") as batch,
    ):
        await batch.submit(jobs)
        outcomes = await collect(batch)
        refused = [r for r in emu.ledger["requests"] if r["code"] == 802]
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    # Two workers, each alone would poll far above 20 requests a second: one limiter for both.
    assert len(refused) <= 1


async def test_a_job_reads_its_image_from_a_url(redis_url: str, tmp_path: Path) -> None:
    (job,) = photos(tmp_path, 1)
    async with Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emu") as emu:
        async with emu.client() as client:
            url = await client.get_access_url(await client.upload(job.image))
        async with running_worker(redis_url, emu), batch_of(redis_url, emu, "b6") as batch:
            await batch.submit([SwapJob(url, job.face)])
            (outcome,) = await collect(batch)
    assert outcome.ok, outcome.error
    assert outcome.job.image == url
