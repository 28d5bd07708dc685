"""Scale-out: one distributed batch on 1, 2 and 4 worker processes (``miocreate worker``).

Uploads are limited by bandwidth per connection (the emulator's ``--bandwidth``), as a
machine's uplink limits it, so the figures do not depend on this machine's two cores: each
worker adds its connections' bandwidth. Every worker runs ``-j`` jobs at once; the batch has
the same number of jobs per worker at every size, so a perfect scale-out keeps the wall time
and multiplies the throughput.

The emulator and a Redis (``redis-server``, ``appendfsync always``) run in processes of their
own; each size gets a fresh batch name. The driver (``DistributedBatch``) runs here.

Figures: jobs per second at each size, and each added worker's share: throughput per worker
relative to one worker's (target: at least 0.8).

    python -m benchmarks.scale_out [--smoke | --full] [--rounds N]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import anyio

from benchmarks._common import (
    CLIENT_ID,
    CLIENT_SECRET,
    REPO,
    EmulatorProcess,
    Table,
    base_parser,
    header,
    median,
    size_of,
)

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"
#: Per connection, bytes a second: 2 MB/s, a 16 Mbit/s uplink per upload.
BANDWIDTH = 2_000_000


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server on a free port, with the production journal settings."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
            "--appendonly", "yes", "--appendfsync", "always",
            "--maxmemory-policy", "noeviction", "--save", "",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait()


def make_jobs(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` photos padded (sparsely) to ``size`` bytes: what is uploaded, not rendered."""
    from miocreate_async.emulator import write_sample_photo

    folder.mkdir(parents=True)
    write_sample_photo(folder / "face.jpg", seed=1, size=(160, 120))
    first = write_sample_photo(folder / "p0000.jpg", seed=0, size=(160, 120))
    with first.open("r+b") as file:
        file.truncate(size)
    paths = [first]
    for index in range(1, count):
        path = folder / f"p{index:04d}.jpg"
        shutil.copyfile(first, path)
        paths.append(path)
    return paths


def start_workers(
    count: int, redis_url: str, concurrency: int, env: dict[str, str], logs: Path
) -> list[subprocess.Popen[bytes]]:
    workers = []
    for index in range(count):
        log = (logs / f"worker{index}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", CLI, "worker", "--redis", redis_url, "-j", str(concurrency),
                 "--poll-maximum", "0.5"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        log.close()
    deadline = time.monotonic() + 60
    for index in range(count):
        while "jobs at once" not in (logs / f"worker{index}.log").read_text():
            if time.monotonic() > deadline:
                raise RuntimeError("a worker did not start")
            time.sleep(0.05)
    return workers


def stop_workers(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


async def drive(redis_url: str, batch: str, paths: list[Path], face: Path) -> float:
    """Seconds from the first submission to the last outcome; every job must succeed."""
    from miocreate_async import SwapJob
    from miocreate_async.distributed import DistributedBatch

    started = time.monotonic()
    async with DistributedBatch(redis_url, batch=batch, timeout=600) as run:
        await run.submit(SwapJob(path, face) for path in paths)
        failed = [o async for o in run.outcomes() if not o.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed: {failed[0].error!r}")
    return time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> int:
    cli = base_parser(
        "Scale-out: 1, 2, 4 worker processes, uploads limited per connection", rounds=2
    )
    args = cli.parse_args(argv)
    if shutil.which("redis-server") is None:
        print("redis-server not found: install it (apt-get install redis-server)")
        return 1
    sizes = size_of(args, smoke=(1, 2), default=(1, 2, 4), full=(1, 2, 4))
    concurrency = size_of(args, smoke=2, default=2, full=4)
    per_slot = size_of(args, smoke=2, default=4, full=8)
    file_size = size_of(args, smoke=1_000_000, default=4_000_000, full=8_000_000)
    rounds = args.rounds or size_of(args, smoke=1, default=2, full=3)
    header(
        "Scale-out over worker processes",
        args,
        f"{per_slot * concurrency} jobs per worker ({file_size / 1e6:g} MB each, uploads capped at "
        f"{BANDWIDTH / 1e6:g} MB/s per connection), -j {concurrency}, task latency 0.5 s; "
        f"workers {', '.join(map(str, sizes))}; {rounds} rounds, medians",
    )
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        most = max(sizes) * per_slot * concurrency
        paths = make_jobs(folder / "jobs", most, file_size)
        face = folder / "jobs" / "face.jpg"
        with (
            EmulatorProcess(
                "--latency", "0.5", "--bandwidth-per-connection", str(BANDWIDTH), "--seed", "1"
            ) as emu,
            redis_server(folder) as redis_url,
        ):
            env = {
                **os.environ,
                "MIOCREATE_BASE_URL": emu.url,
                "MIOCREATE_CLIENT_ID": CLIENT_ID,
                "MIOCREATE_CLIENT_SECRET": CLIENT_SECRET,
            }
            os.environ.update(env)
            seconds: dict[int, list[float]] = {n: [] for n in sizes}
            for index in range(rounds):
                for n in sizes:
                    workers = start_workers(n, redis_url, concurrency, env, folder)
                    try:
                        jobs = paths[: n * per_slot * concurrency]
                        seconds[n].append(
                            anyio.run(drive, redis_url, f"bench-{n}-{index}", jobs, face)
                        )
                    finally:
                        stop_workers(workers)
                    emu.reset()
    table = Table("workers", "jobs", "seconds", "jobs/s", "per worker", "vs one worker")
    one = per_slot * concurrency / median(seconds[1])
    shares = {}
    for n in sizes:
        rate = n * per_slot * concurrency / median(seconds[n])
        shares[n] = rate / n / one
        table.add(n, n * per_slot * concurrency, median(seconds[n]), rate, rate / n, shares[n])
    print(table.render())
    print()
    worst = min(shares.values())
    verdict = "met" if worst >= 0.8 else "MISSED"
    print(
        f"each added worker's throughput: at least {worst:.2f}x the first's "
        f"(target >= 0.8: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
