"""Soak: one distributed batch through chaos. Three ``miocreate worker`` processes, each
randomly SIGKILLed (and replaced) or SIGSTOPped for a few seconds (past its lease) and
continued; Redis (``appendfsync always``) restarted once mid-batch; two CPU-burning processes
beside it all. The driver (``DistributedBatch``) runs here.

Asserts, per run: every job has exactly one outcome (a job taken over as "uncertain" from a
worker paused past its lease mid-creation, whose late reply was then recorded, has only its
task's); nothing was created twice (the emulator's ledger, by image content); every failure is
an uncertain creation (``SubmissionUncertainError``) whose task id, where the journal has one,
is a task of that image. Prints the figures.

    python -m benchmarks.soak_distributed [--jobs 300] [--runs 1] [--seed N] [--burners 2]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from benchmarks._common import CLIENT_ID, CLIENT_SECRET, REPO, EmulatorProcess

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"
BURN = "while True: pass"
LEASE = 3.0


class Redis:
    """A redis-server keeping its append-only file in ``folder``, restartable on its port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "always",
             "--maxmemory-policy", "noeviction", "--save", "", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def restart(self, away: float) -> None:
        self.stop()
        time.sleep(away)
        self.start()


class Workers:
    def __init__(self, redis_url: str, env: dict[str, str], logs: Path) -> None:
        self.redis_url = redis_url
        self.env = env
        self.logs = logs
        self.started = 0
        self.running: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()

    def crashed(self) -> int:
        """Workers that stopped by themselves (an error), not by a SIGKILL of the chaos."""
        return sum(w.poll() is not None and w.pid not in self.killed for w in self.running)

    def start(self) -> None:
        log = (self.logs / f"worker{self.started}.log").open("wb")
        self.started += 1
        self.running.append(
            subprocess.Popen(
                [sys.executable, "-c", CLI, "worker", "--redis", self.redis_url, "-j", "16",
                 "--lease", str(LEASE), "--claim-idle", "4", "--poll-maximum", "0.5"],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        log.close()

    def stop_all(self) -> None:
        for worker in self.running:
            if worker.poll() is None:
                worker.send_signal(signal.SIGCONT)
                worker.kill()
            worker.wait()


def ledger(url: str) -> dict[str, Any]:
    import json

    with urllib.request.urlopen(f"{url}/_emulator/ledger", timeout=60) as reply:
        data: dict[str, Any] = json.load(reply)
        return data


def make_jobs(folder: Path, count: int) -> list[Path]:
    from miocreate_async.emulator import write_sample_face, write_sample_photo

    folder.mkdir(parents=True)
    write_sample_face(folder / "face.png", seed=1)
    return [
        write_sample_photo(folder / f"p{i:04d}.jpg", seed=i, size=(96, 72)) for i in range(count)
    ]


def chaos(
    workers: Workers, redis: Redis, done: threading.Event, progress: list[int], total: int,
    rng: random.Random, figures: Counter[str],
) -> None:  # fmt: skip
    """Until the batch is done: every 1.5-4 s, SIGKILL a worker (and start another) or
    SIGSTOP one for 2-6 s (its lease is 3 s); Redis restarted once, at 40 % of the outcomes."""
    restarted = False
    next_action = time.monotonic() + rng.uniform(1.5, 4.0)
    while not done.wait(0.1):
        if not restarted and progress[0] >= total * 0.4:
            restarted = True
            redis.restart(away=rng.uniform(0.5, 2.0))
            figures["redis restarts"] += 1
            continue
        alive = [w for w in workers.running if w.poll() is None]
        if time.monotonic() < next_action or not alive:
            continue
        next_action = time.monotonic() + rng.uniform(1.5, 4.0)
        victim = rng.choice(alive)
        if rng.random() < 0.5:
            workers.killed.add(victim.pid)
            victim.kill()
            victim.wait()
            workers.start()
            figures["SIGKILL"] += 1
        else:
            victim.send_signal(signal.SIGSTOP)
            done.wait(rng.uniform(2.0, 6.0))
            victim.send_signal(signal.SIGCONT)
            figures["SIGSTOP/SIGCONT"] += 1


async def drive(redis_url: str, base_url: str, paths: list[Path], progress: list[int]) -> list[Any]:
    from miocreate_async import SwapJob
    from miocreate_async.distributed import DistributedBatch

    face = paths[0].parent / "face.png"
    outcomes = []
    batch = DistributedBatch(
        redis_url, batch="soak", base_url=base_url, client_id=CLIENT_ID, timeout=300
    )
    async with batch:
        await batch.submit([SwapJob(path, face) for path in paths])
        with anyio.fail_after(900):  # a stall fails the run, it does not hang it
            async for outcome in batch.outcomes():
                outcomes.append(outcome)
                progress[0] = len(outcomes)
    return outcomes


def one_run(jobs: int, seed: int, burners: int = 2) -> dict[str, Any]:
    from miocreate_async._journal import JobState

    rng = random.Random(seed)
    figures: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="miocreate-soak-") as folder:
        root = Path(folder)
        paths = make_jobs(root / "jobs", jobs)
        (root / "redis").mkdir()
        (root / "logs").mkdir()
        redis = Redis(root / "redis")
        redis.start()
        burning = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(burners)]
        try:
            with EmulatorProcess("--latency", "0.5-2", "--seed", str(seed)) as emulator:
                env = {
                    **os.environ,
                    "MIOCREATE_CLIENT_ID": CLIENT_ID,
                    "MIOCREATE_CLIENT_SECRET": CLIENT_SECRET,
                    "MIOCREATE_BASE_URL": emulator.url,
                }
                workers = Workers(redis.url, env, root / "logs")
                for _ in range(3):
                    workers.start()
                done = threading.Event()
                progress = [0]
                agent = threading.Thread(
                    target=chaos, args=(workers, redis, done, progress, jobs, rng, figures)
                )
                started = time.monotonic()
                agent.start()
                try:
                    outcomes = anyio.run(drive, redis.url, emulator.url, paths, progress)
                finally:
                    done.set()
                    agent.join()
                    elapsed = time.monotonic() - started
                    crashed = workers.crashed()
                    workers.stop_all()
                book = ledger(emulator.url)
        finally:
            for burner in burning:
                burner.kill()
                burner.wait()
            redis.stop()
        # Late creation replies (a worker paused past its lease): waited for, or (the job was
        # handed out uncertain already) recorded on it.
        logs = "".join(log.read_text(errors="replace") for log in (root / "logs").iterdir())
        figures["late replies waited for"] = logs.count("recorded, to be waited for")
        figures["late replies after hand-out"] = logs.count("handed out uncertain; recorded")
        if os.environ.get("SOAK_KEEP_LOGS"):
            shutil.copytree(root / "logs", Path(os.environ["SOAK_KEEP_LOGS"]) / f"run-{seed}")

    assert crashed == 0, f"{crashed} worker(s) stopped by an error (see SOAK_KEEP_LOGS)"
    # Every job exactly one outcome (a late creation reply after a take-over included).
    by_job = Counter(outcome.job_id for outcome in outcomes)
    assert len(by_job) == jobs, f"{len(by_job)} jobs had an outcome, of {jobs}"
    twice = [job_id for job_id, n in by_job.items() if n > 1]
    assert not twice, f"{len(twice)} job(s) had more than one outcome: {twice[:5]}"
    final = outcomes
    # Nothing created twice: one task per image at most.
    sha_of = {upload["key"]: upload["sha256"] for upload in book["uploads"]}
    per_image = Counter(sha_of[task["request"]["main_key"]] for task in book["tasks"])
    assert max(per_image.values()) == 1, "an image was created twice"
    # Every failure an uncertain creation; a task id it has is a task of its image.
    tasks = {task["id"]: task for task in book["tasks"]}
    failed = [o for o in final if not o.ok]
    for outcome in failed:
        assert outcome.state is JobState.UNCERTAIN, (outcome.state, outcome.error)
        assert type(outcome.error).__name__ == "SubmissionUncertainError", outcome.error
        if outcome.task_id is not None:
            assert outcome.task_id in tasks
    collected = {o.task_id for o in final if o.ok}
    return {
        "jobs": jobs,
        "seconds": round(elapsed, 1),
        "succeeded": len(final) - len(failed),
        "uncertain": len(failed),
        "outcomes": len(outcomes),
        "uncertain with a task id": sum(o.task_id is not None for o in failed),
        "tasks created": len(book["tasks"]),
        # (Created by a worker killed before it recorded the task's id: the uncertain jobs'.)
        "tasks not collected": len(set(tasks) - collected),
        "created twice": sum(n - 1 for n in per_image.values()),
        **figures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 10_000)
    parser.add_argument("--burners", type=int, default=2, help="CPU-burning processes beside")
    args = parser.parse_args(argv)
    for run in range(args.runs):
        figures = one_run(args.jobs, args.seed + run, args.burners)
        line = ", ".join(f"{name} {value}" for name, value in figures.items())
        print(f"run {run + 1} (seed {args.seed + run}): {line}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
