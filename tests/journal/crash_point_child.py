"""One journaled job's life, run as a subprocess by ``test_crash_points.py``, numbering every
point where it can stop: each journal write (before and after it) and each API request (before
it is sent, and the creation while it is out).

    python crash_point_child.py JOURNAL OUT POINTS_FILE [--kill-at N] [--fail-at N]

``--kill-at N``: SIGKILL this process at point N (a real signal, as a crash). ``--fail-at N``:
the journal write at point N fails once (``JournalError``, as a full disk). The names of the
points reached are appended to POINTS_FILE; the outcome is printed as one JSON line. The
emulator's URL and credentials come from the environment (``MIOCREATE_*``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from miocreate_async import MioCreate, PollPolicy, RetryPolicy, SwapJob
from miocreate_async._journal import JobState, JournalError, NewJob, SQLiteJournal

FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.05)


class Points:
    """Counts the points as they are reached; kills or fails at the chosen one."""

    def __init__(self, log: Path, kill_at: int, fail_at: int) -> None:
        self.log, self.kill_at, self.fail_at = log, kill_at, fail_at
        self.count = 0
        self.last = ""

    def reached(self, name: str) -> bool:
        """True when the write at this point is to fail."""
        self.count += 1
        self.last = name
        with self.log.open("a") as file:
            file.write(f"{self.count} {name}\n")
        if self.count == self.kill_at:
            if name == "request image_swap":
                # Killed while the creation is out (the emulator holds it for a moment).
                loop = asyncio.get_running_loop()
                loop.call_later(0.1, os.kill, os.getpid(), signal.SIGKILL)
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.count == self.fail_at


class Instrumented(SQLiteJournal):
    def __init__(self, path: Path, points: Points) -> None:
        super().__init__(path)
        self.points = points

    def _before(self, what: str) -> None:
        if self.points.reached(f"before {what}"):
            raise JournalError(f"the journal could not be written ({what}): disk full")

    async def register(self, jobs: Sequence[NewJob]) -> Any:
        self._before("register")
        records = await super().register(jobs)
        self.points.reached("after register")
        return records

    async def transition(self, job_id: str, expected: Any, state: JobState, **fields: Any) -> Any:
        self._before(state.value)
        record = await super().transition(job_id, expected, state, **fields)
        self.points.reached(f"after {state.value}")
        return record


class Gate:
    """The client's limiter: called just before each API request is sent."""

    def __init__(self, points: Points) -> None:
        self.points = points

    async def acquire(self) -> None:
        # The request right after the intent is the creation.
        creation = self.points.last == "after submitting"
        self.points.reached("request image_swap" if creation else "request")


async def main(arguments: argparse.Namespace) -> None:
    points = Points(Path(arguments.points), arguments.kill_at, arguments.fail_at)
    out = Path(arguments.out)
    journal = Instrumented(Path(arguments.journal), points)
    job = SwapJob(media=out.parent / "photo.jpg", face=out.parent / "face.png", kind="image")
    report: dict[str, Any] = {}
    retry = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
    async with MioCreate(rate_limit=Gate(points), retry=retry) as client:
        try:
            async with client.swap_many([job], journal=journal, poll=FAST, timeout=30) as results:
                async for outcome in results:
                    report = {"task_id": outcome.task_id, "error": None}
                    if outcome.error is not None:
                        report["error"] = type(outcome.error).__name__
                        report["error_task_id"] = outcome.error.task_id
                        continue
                    assert outcome.result is not None
                    path = await outcome.result.download(out / "result.jpg", overwrite=True)
                    await results.mark_downloaded(outcome, path)
                    report["saved"] = str(path)
        except JournalError as error:  # the journal cannot admit the job: nothing was sent
            report = {"task_id": None, "error": type(error).__name__}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("journal")
    parser.add_argument("out")
    parser.add_argument("points")
    parser.add_argument("--kill-at", type=int, default=0)
    parser.add_argument("--fail-at", type=int, default=0)
    anyio.run(main, parser.parse_args(sys.argv[1:]))
