"""A user's batch script, run (and killed) by test_journal_kill.py: swap every photo of a folder
with one face through a journal, download each result once, record it downloaded.

    python kill_swap_many.py BASE_URL INPUTS OUTPUTS JOURNAL [--resubmit-uncertain]

Prints one JSON line per outcome: index, ok, error type, resumed, task id.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from miocreate_async import MioCreate, PollPolicy, RetryPolicy, SwapJob


async def main(argv: list[str]) -> None:
    base_url, inputs, outputs, journal = argv[:4]
    resubmit = "--resubmit-uncertain" in argv
    face = Path(inputs) / "face.png"
    photos = sorted(Path(inputs).glob("photo*.jpg"))
    jobs = [SwapJob(image=photo, face=face) for photo in photos]
    poll = PollPolicy(first=0.05, minimum=0.05, maximum=0.2)
    async with (
        MioCreate(
            client_id="emulator-client-id",
            client_secret="emulator-client-secret",
            base_url=base_url,
            retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05),
        ) as mc,
        mc.swap_many(
            jobs, journal=journal, concurrency=4, poll=poll, resubmit_uncertain=resubmit
        ) as results,
    ):
        async for outcome in results:
            if outcome.result is not None:
                target = Path(outputs) / f"{photos[outcome.index].stem}.jpg"
                # Downloads are atomic: a file under its final name is complete.
                if not target.exists():
                    await outcome.result.download(target)
                await results.mark_downloaded(outcome, target)
            line = {
                "index": outcome.index,
                "ok": outcome.ok,
                "error": type(outcome.error).__name__ if outcome.error else None,
                "resumed": outcome.resumed,
                "task_id": outcome.task_id,
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
