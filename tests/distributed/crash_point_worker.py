"""A distributed worker whose journal writes are numbered, run as a subprocess by
``test_distributed_crash_points.py``: each change of a job in the Redis journal (the claim,
the intent, the task id, the result) is a point before and after it.

    python crash_point_worker.py REDIS_URL POINTS_FILE BATCH [--kill-at N] [--fail-at N]

``--kill-at N``: SIGKILL this process at point N (for the creation's intent, a moment after it,
while the creation is out). ``--fail-at N``: the write at point N fails (Redis unreachable), as
it would when the server goes away. Credentials and base URL come from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
from redis.exceptions import ConnectionError as RedisConnectionError

from miocreate_async import PollPolicy
from miocreate_async.distributed import Worker, _worker
from miocreate_async.distributed._journal import RedisJournal


class Points:
    def __init__(self, log: Path, kill_at: int, fail_at: int) -> None:
        self.log, self.kill_at, self.fail_at = log, kill_at, fail_at
        self.count = 0

    def reached(self, name: str) -> None:
        self.count += 1
        with self.log.open("a") as file:
            file.write(f"{self.count} {name}\n")
        if self.count == self.kill_at:
            if name == "after submitting":  # the creation goes out now: killed while it is out
                asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), signal.SIGKILL)
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        if self.count == self.fail_at:
            raise RedisConnectionError(f"injected: the journal write failed at {name}")


POINTS: Points
BATCH = ""


class Instrumented(RedisJournal):
    """Counts the writes of the batch under test only (a stale message of another is not)."""

    def _reached(self, name: str) -> None:
        if self.batch == BATCH:
            POINTS.reached(name)

    async def claim(self, job_id: str, owner: str, lease: float) -> Any:
        self._reached("before claim")
        claim = await super().claim(job_id, owner, lease)
        self._reached("after claim")
        return claim

    async def move(self, job_id: str, epoch: Any, expected: Any, to: Any, **kw: Any) -> str:
        self._reached(f"before {to.value}")
        reply = await super().move(job_id, epoch, expected, to, **kw)
        self._reached(f"after {to.value}")
        return reply


async def main(arguments: argparse.Namespace) -> None:
    global POINTS, BATCH
    POINTS = Points(Path(arguments.points), arguments.kill_at, arguments.fail_at)
    BATCH = arguments.batch
    _worker.RedisJournal = Instrumented  # type: ignore[attr-defined]
    worker = Worker(
        arguments.redis_url,
        concurrency=2,
        lease=1.0,
        claim_idle=1.5,
        poll=PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1),
    )
    print("listening", flush=True)
    await worker.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("points")
    parser.add_argument("batch")
    parser.add_argument("--kill-at", type=int, default=0)
    parser.add_argument("--fail-at", type=int, default=0)
    anyio.run(main, parser.parse_args(sys.argv[1:]))
