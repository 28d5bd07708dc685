"""Emulator capacity: how many tasks a second the emulator sustains on this machine.

A load generator (bare aiohttp, the lightest client, in a process of its own) keeps K loops
busy for T seconds against one emulator process. Two loads:

* tasks: each loop creates an image swap and polls it P times (the emulator's latency is 0,
  so the first poll builds the result: a Pillow render once, hard links after), as a batch
  does; the figure is tasks a second;
* polls: each loop asks for a succeeded task's detail again and again; the figure is
  requests a second, the ceiling of ``call_overhead``.

The generator and the emulator share the machine's cores, so the figures are what the other
benchmarks can get, not the emulator alone on an idle machine; the CPU columns tell which side
was the limit (a process at 1.0 s per s is using a whole core).

    python -m benchmarks.emulator_capacity [--smoke | --full] [--rounds N]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RAW_PATHS,
    EmulatorProcess,
    Table,
    base_parser,
    cpu_now,
    header,
    in_turn,
    median,
    raw_api,
    run_worker,
    serve_worker,
    size_of,
)

LOADS = ("tasks", "polls")


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        api = await raw_api(session, spec)

        async def upload(path: str) -> str:
            target = await api(RAW_PATHS["upload_url"], {"file_name": Path(path).name})
            async with session.put(target["upload_url"], data=Path(path).read_bytes()) as reply:
                reply.raise_for_status()
            return str(target["key"])

        body = {"main_key": await upload(spec["photo"]), "target_key": await upload(spec["face"])}
        done = (await api(RAW_PATHS["image"], body))["task_id"]
        await api(RAW_PATHS["detail"], {"id": done})  # the one render, before the clock
        counts = {"tasks": 0, "requests": 0}
        polls = spec["polls"]
        stop = time.perf_counter() + spec["seconds"]

        async def task_loop() -> None:
            while time.perf_counter() < stop:
                task_id = (await api(RAW_PATHS["image"], body))["task_id"]
                for _ in range(polls):
                    await api(RAW_PATHS["detail"], {"id": task_id})
                counts["tasks"] += 1
                counts["requests"] += 1 + polls

        async def poll_loop() -> None:
            while time.perf_counter() < stop:
                await api(RAW_PATHS["detail"], {"id": done})
                counts["requests"] += 1

        loop = task_loop if spec["load"] == "tasks" else poll_loop
        cpu, start = cpu_now(), time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(spec["concurrency"])))
        elapsed = time.perf_counter() - start
    return {**counts, "elapsed": elapsed, "cpu": cpu_now() - cpu}


def main(argv: Sequence[str] | None = None) -> int:
    cli = base_parser(__doc__ or "", rounds=3)
    args = cli.parse_args(argv)
    if args.worker:
        return serve_worker(args.worker, _worker)
    from miocreate_async.emulator import write_sample_face, write_sample_photo

    seconds = size_of(args, smoke=0.5, default=5.0, full=15.0)
    concurrency = size_of(args, smoke=8, default=64, full=64)
    polls = 3
    rounds = args.rounds or size_of(args, smoke=1, default=3, full=5)
    header(
        "Emulator capacity",
        args,
        f"{concurrency} loops for {seconds:g} s per run; a task is a creation and {polls} polls; "
        f"{rounds} rounds of {' / '.join(LOADS)} in turn; medians.",
    )
    with tempfile.TemporaryDirectory(prefix="miocreate-bench-") as directory:
        photo = write_sample_photo(Path(directory, "photo.jpg"))
        face = write_sample_face(Path(directory, "face.png"))
        with EmulatorProcess("--latency", "0", "--seed", "1") as emulator:

            def run(load: str, _: int) -> dict[str, Any]:
                emulator.reset()
                spec = {
                    **emulator.spec(),
                    "load": load,
                    "photo": str(photo),
                    "face": str(face),
                    "seconds": seconds,
                    "concurrency": concurrency,
                    "polls": polls,
                }
                before = emulator.cpu_seconds()
                result = run_worker("benchmarks.emulator_capacity", spec)
                # The worker's set-up (token, uploads, one render) is counted too: a bound.
                result["emulator_cpu"] = emulator.cpu_seconds() - before
                return result

            results = in_turn(rounds, LOADS, run)
    table = Table(
        "load",
        "tasks/s",
        "requests/s",
        "emulator CPU s/s",
        "generator CPU s/s",
        "emulator CPU us/request",
    )
    for load in LOADS:
        runs = results[load]
        table.add(
            load if load == "polls" else f"tasks (create + {polls} polls)",
            median([run["tasks"] / run["elapsed"] for run in runs]) if load == "tasks" else "",
            median([run["requests"] / run["elapsed"] for run in runs]),
            median([run["emulator_cpu"] / run["elapsed"] for run in runs]),
            median([run["cpu"] / run["elapsed"] for run in runs]),
            median([run["emulator_cpu"] / run["requests"] * 1e6 for run in runs]),
        )
    print(table.render(), end="\n\n")
    tasks = median([run["tasks"] / run["elapsed"] for run in results["tasks"]])
    print(
        f"the emulator sustains {tasks:.0f} tasks/s (create + {polls} polls each); the full "
        "batch benchmark asks for at most about 20 tasks/s and 200 requests/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
