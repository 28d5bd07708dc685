"""A driver process for the scale-out tests: submits every photo of a folder as one batch and
appends each outcome to a JSON-lines file as it comes.

    python distributed_driver.py REDIS_URL BATCH FOLDER OUT.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from miocreate_async import SwapJob
from miocreate_async.distributed import DistributedBatch


async def main(redis_url: str, batch: str, folder: Path, out: Path) -> None:
    face = folder / "face.png"
    jobs = [SwapJob(path, face) for path in sorted(folder.glob("p*.jpg"))]
    async with DistributedBatch(redis_url, batch=batch, timeout=120) as run:
        await run.submit(jobs)
        with out.open("a") as lines:
            async for outcome in run.outcomes():
                error = outcome.error
                line = {
                    "job": outcome.job_id,
                    "state": outcome.state.value,
                    "task_id": outcome.task_id,
                    "error": None if error is None else type(error).__name__,
                    "resumed": outcome.resumed,
                }
                lines.write(json.dumps(line) + "\n")
                lines.flush()
        print(json.dumps((await run.refresh()).as_dict()), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
