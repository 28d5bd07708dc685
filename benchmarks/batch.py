"""Batch: ``swap_many`` versus a hand-written ``asyncio.gather`` of per-job polling loops.

A mix of image swaps (three in four) and video swaps runs at a fixed concurrency two ways,
each in a fresh process against one emulator process:

* ``swap_many``: ``async with mc.swap_many(jobs, concurrency=C) as results``;
* by hand: ``asyncio.gather`` of one coroutine per job under an ``asyncio.Semaphore(C)``, each
  uploading its image and face, creating the task, then polling it every second, written
  with bare aiohttp as the API's page suggests.

Figures, from the emulator's ledger (reset before each run):

* wall time against the ideal: the emulator's own schedule, that is the tasks' durations
  (``ends_at - created_at``) run in creation order on C slots, each slot freed the moment its
  task ends (as if every end were seen at once and uploads and creation cost nothing);
* poll requests per task, beside the ideal schedule's at the same median delay: for each task a
  first poll at the shortest duration its kind has shown in the run, then polls evenly spaced
  at twice the side's own median delay (which such polls give), so its poll count follows
  from the task's real duration in the ledger;
* the median and p99 delay from a task's end on the server (``ends_at``) to its outcome
  reaching the caller's code; the peak resident memory.

Then the same under a server request quota (code 802 past Q requests a second), once per side:
a robust client finishes every job; told nothing, ``swap_many`` should come close to the wall
time of a client told the quota (``rate_limit=Q``) with few 802 answers.

``--one-kind`` runs a batch of images only (2-6 s), where no poller can lean on the
difference between kinds.

    python -m benchmarks.batch [--smoke | --full] [--rounds N] [--quota Q] [--one-kind]
"""

from __future__ import annotations

import asyncio
import heapq
import math
import os
import sys
import tempfile
import time
from collections import Counter
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
    mib,
    peak_rss,
    percentile,
    raw_api,
    reset_peak_rss,
    rss,
    run_worker,
    serve_worker,
    size_of,
)

SIDES = ("swap_many", "by hand")
#: Under the quota, also ``swap_many`` from a client told the quota (``rate_limit=``).
QUOTA_SIDES = ("swap_many", "swap_many, rate_limit=Q", "by hand")
#: Every VIDEO_EVERY-th job is a video swap.
VIDEO_EVERY = 4
PHOTOS = 8
VIDEOS = 2


def write_inputs(directory: Path) -> None:
    """A few photos, two short videos and one face: the jobs reuse them (the emulator renders
    each distinct swap once, so its own work stays small)."""
    from miocreate_async.emulator import write_sample_face, write_sample_photo, write_sample_video

    for index in range(PHOTOS):
        write_sample_photo(directory / f"photo-{index}.jpg", seed=index)
    for index in range(VIDEOS):
        write_sample_video(directory / f"clip-{index}.mp4", duration=2 + index, size=256 * 1024)
    write_sample_face(directory / "face.png", seed=1)


def job_list(directory: str, count: int, one_kind: bool = False) -> list[tuple[str, str, str]]:
    """``(media, face, kind)`` of every job, the same for both sides."""
    jobs = []
    for index in range(count):
        if not one_kind and index % VIDEO_EVERY == VIDEO_EVERY - 1:
            media, kind = os.path.join(directory, f"clip-{index % VIDEOS}.mp4"), "video"
        else:
            media, kind = os.path.join(directory, f"photo-{index % PHOTOS}.jpg"), "image"
        jobs.append((media, os.path.join(directory, "face.png"), kind))
    return jobs


# --- the measured sides (worker processes) ----------------------------------------------------

#: (task id or None, epoch seconds when the outcome reached the caller, error name or None)
Outcome = tuple[int | None, float, str | None]


async def _swap_many(spec: dict[str, Any], jobs: list[tuple[str, str, str]]) -> Any:
    from miocreate_async import MioCreate, SwapJob

    outcomes: list[Outcome] = []
    start = time.perf_counter()
    async with (
        MioCreate(
            spec["client_id"],
            spec["client_secret"],
            base_url=spec["url"],
            rate_limit=spec.get("rate_limit"),
        ) as mc,
        mc.swap_many(
            [SwapJob(image=media, face=face) for media, face, _ in jobs],
            concurrency=spec["concurrency"],
        ) as results,
    ):
        async for outcome in results:
            error = None if outcome.error is None else type(outcome.error).__name__
            outcomes.append((outcome.task_id, time.time(), error))
    return time.perf_counter() - start, outcomes


async def _by_hand(spec: dict[str, Any], jobs: list[tuple[str, str, str]]) -> Any:
    """What a user writes from the API's page: gather, a semaphore, poll every second."""
    import aiohttp

    outcomes: list[Outcome] = []
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        api = await raw_api(session, spec)

        async def upload(path: str) -> str:
            target = await api(RAW_PATHS["upload_url"], {"file_name": os.path.basename(path)})
            with open(path, "rb") as file:
                data = file.read()
            async with session.put(target["upload_url"], data=data) as reply:
                if reply.status != 200:
                    raise RuntimeError(f"upload failed: HTTP {reply.status}")
            return str(target["key"])

        async def one(media: str, face: str, kind: str, semaphore: asyncio.Semaphore) -> None:
            task_id = None
            async with semaphore:
                try:
                    media_key = await upload(media)
                    face_key = await upload(face)
                    body = {"main_key": media_key, "target_key": face_key, "is_hd": 2}
                    task_id = (await api(RAW_PATHS[kind], body))["task_id"]
                    while True:
                        detail = await api(RAW_PATHS["detail"], {"id": task_id})
                        if detail["status"] == 0:
                            outcomes.append((task_id, time.time(), None))
                            return
                        if detail["status"] not in (1, 2):
                            raise RuntimeError(f"task failed: {detail['message']}")
                        await asyncio.sleep(1)
                except Exception as exc:
                    outcomes.append((task_id, time.time(), type(exc).__name__))

        semaphore = asyncio.Semaphore(spec["concurrency"])
        await asyncio.gather(*(one(*job, semaphore) for job in jobs))
    return time.perf_counter() - start, outcomes


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp  # imported before the baseline, by both sides alike

    import miocreate_async

    del aiohttp, miocreate_async
    jobs = job_list(spec["inputs"], spec["jobs"], spec.get("one_kind", False))
    side = _by_hand if spec["side"] == "by hand" else _swap_many
    baseline = rss()
    reset_peak_rss()
    cpu = cpu_now()
    elapsed, outcomes = await side(spec, jobs)
    return {
        "elapsed": elapsed,
        "cpu": cpu_now() - cpu,
        "outcomes": outcomes,
        "baseline_rss": baseline,
        "peak_rss": peak_rss(),
    }


# --- the driver -------------------------------------------------------------------------------


def ideal(durations: Sequence[float], concurrency: int) -> float:
    """The makespan of ``durations`` in order on ``concurrency`` slots, each slot taking the
    next one the moment it is free."""
    slots = [0.0] * concurrency
    end = 0.0
    for duration in durations:
        finish = heapq.heappop(slots) + duration
        end = max(end, finish)
        heapq.heappush(slots, finish)
    return end


def ideal_polls(tasks: Sequence[dict[str, Any]], spacing: float) -> float:
    """Poll requests per task of the ideal schedule: a first poll at the shortest duration the
    task's kind has shown, then one every ``spacing`` seconds until the task's real end."""
    if not tasks or not spacing > 0:
        return math.nan
    shortest: dict[str, float] = {}
    for task in tasks:
        duration = task["ends_at"] - task["created_at"]
        shortest[task["kind"]] = min(duration, shortest.get(task["kind"], math.inf))
    polls = 0
    for task in tasks:
        late = task["ends_at"] - task["created_at"] - shortest[task["kind"]]
        polls += 1 + max(0, math.ceil(late / spacing - 1e-9))
    return polls / len(tasks)


def analyse(result: dict[str, Any], ledger: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """The run's figures, from its outcomes and the emulator's ledger."""
    tasks = {task["id"]: task for task in ledger["tasks"]}
    durations = [tasks[key]["ends_at"] - tasks[key]["created_at"] for key in sorted(tasks)]
    requests = ledger["requests"]
    if ledger.get("requests_total", len(requests)) > len(requests):
        print("warning: the ledger dropped requests; counts are low", file=sys.stderr)
    operations = Counter(request["operation"] for request in requests)
    delays = [
        received - tasks[task_id]["ends_at"]
        for task_id, received, error in result["outcomes"]
        if error is None and task_id in tasks
    ]
    errors = Counter(error for _, _, error in result["outcomes"] if error is not None)
    delay_median = percentile(delays, 0.5)
    return {
        "wall": result["elapsed"],
        "ideal": ideal(durations, concurrency),
        "polls_per_task": operations["task_detail"] / max(1, len(tasks)),
        # Evenly spaced polls see an end half a gap late at the median: the gap is twice it.
        "ideal_polls": ideal_polls(list(tasks.values()), 2 * delay_median),
        "delay_median": delay_median,
        "delay_mean": sum(delays) / len(delays) if delays else math.nan,
        "delay_p99": percentile(delays, 0.99),
        "peak_mib": mib(result["peak_rss"]),
        "growth_mib": mib(result["peak_rss"] - result["baseline_rss"]),
        "requests": sum(count for name, count in operations.items() if "storage" not in name),
        "uploads": operations["storage_put"],
        "refused": sum(1 for request in requests if request.get("code") == 802),
        "failed": sum(errors.values()),
        "jobs": len(result["outcomes"]),
        "errors": dict(errors),
        "cpu": result["cpu"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    cli = base_parser(__doc__ or "", rounds=3)
    cli.add_argument("--quota", type=float, help="requests per second of the quota phase")
    cli.add_argument(
        "--one-kind", action="store_true", help="images only, 2-6 s (400 jobs with --full)"
    )
    args = cli.parse_args(argv)
    if args.worker:
        return serve_worker(args.worker, _worker)
    concurrency = size_of(args, smoke=4, default=100, full=100)
    if args.one_kind:
        jobs = size_of(args, smoke=8, default=200, full=400)
        latency = size_of(args, smoke="image=0.1-0.3", default="image=2-6", full="image=2-6")
        mix = "images only"
    else:
        jobs = size_of(args, smoke=8, default=200, full=1_000)
        latency = size_of(
            args,
            smoke="image=0.1-0.2,video=0.3-0.5",
            default="image=1-2,video=4-8",
            full="image=2-4,video=15-30",
        )
        mix = f"1 in {VIDEO_EVERY} a video swap"
    quota = args.quota or size_of(args, smoke=20.0, default=30.0, full=50.0)
    rounds = args.rounds or size_of(args, smoke=1, default=3, full=3)
    header(
        "Batch: swap_many versus gather + semaphore + poll every second",
        args,
        f"{jobs} jobs ({mix}), concurrency {concurrency}, emulator "
        f"latency {latency}; {rounds} rounds of {' / '.join(SIDES)} in turn, each run in a "
        f"fresh process; medians.",
    )
    with tempfile.TemporaryDirectory(prefix="miocreate-bench-") as inputs:
        write_inputs(Path(inputs))
        base = {
            "inputs": inputs,
            "jobs": jobs,
            "concurrency": concurrency,
            "one_kind": args.one_kind,
        }
        with EmulatorProcess("--latency", latency, "--seed", "7") as emulator:

            def run(side: str, _: int) -> dict[str, Any]:
                emulator.reset()
                spec = {**emulator.spec(), **base, "side": side}
                if "rate_limit" in side:
                    spec["rate_limit"] = quota
                result = run_worker("benchmarks.batch", spec)
                return analyse(result, emulator.ledger(), concurrency)

            results = in_turn(rounds, SIDES, run)
        verdicts = _report(results)
        print(
            f"\nUnder a request quota of {quota:g} requests/s (code 802 past it), one run each:\n"
        )
        options = ("--latency", latency, "--seed", "7", "--request-quota", f"{quota:g}")
        with EmulatorProcess(*options) as emulator:
            quota_results = in_turn(1, QUOTA_SIDES, run)
        verdicts += _report_quota(quota_results)
    print("\n".join(verdicts))
    return 0


def _report(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    table = Table(
        "side",
        "wall s",
        "ideal s",
        "wall/ideal",
        "polls/task",
        "ideal polls/task",
        "polls/ideal",
        "delay median s",
        "delay mean s",
        "delay p99 s",
        "peak RSS MiB",
        "RSS growth MiB",
        "API requests",
        "uploads",
        "client CPU s",
        "failed",
    )

    def figure(side: str, name: str) -> list[float]:
        return [run[name] for run in results[side]]

    for side in SIDES:
        table.add(
            side,
            median(figure(side, "wall")),
            median(figure(side, "ideal")),
            f"{median([r['wall'] / r['ideal'] for r in results[side]]):.3f}x",
            median(figure(side, "polls_per_task")),
            median(figure(side, "ideal_polls")),
            f"{median([r['polls_per_task'] / r['ideal_polls'] for r in results[side]]):.2f}x",
            median(figure(side, "delay_median")),
            median(figure(side, "delay_mean")),
            median(figure(side, "delay_p99")),
            median(figure(side, "peak_mib")),
            median(figure(side, "growth_mib")),
            round(median(figure(side, "requests"))),
            round(median(figure(side, "uploads"))),
            median(figure(side, "cpu")),
            round(median(figure(side, "failed"))),
        )
    print(table.render(), flush=True)
    for side in SIDES:
        errors = Counter[str]()
        for run in results[side]:
            errors.update(run["errors"])
        if errors:
            print(f"{side} errors: {dict(errors)}")
    ours, theirs = results["swap_many"], results["by hand"]
    over_ideal = median([run["wall"] / run["ideal"] for run in ours])
    polls = median([run["polls_per_task"] / run["ideal_polls"] for run in ours])
    ours_delay = median([run["delay_median"] for run in ours])
    their_delay = median([run["delay_median"] for run in theirs])
    p99 = median([run["delay_p99"] for run in ours])
    return [
        "",
        f"swap_many wall {over_ideal:.3f}x the ideal (target <= 1.05x: "
        f"{'met' if over_ideal <= 1.05 else 'MISSED'})",
        f"swap_many polls/task {median([run['polls_per_task'] for run in ours]):.2f}, "
        f"{polls:.2f}x the ideal schedule's "
        f"{median([run['ideal_polls'] for run in ours]):.2f} at its median delay "
        f"(target <= 1.3x: {'met' if polls <= 1.3 else 'MISSED'})",
        f"swap_many median delay {ours_delay:.2f} s vs the hand-written loop's "
        f"{their_delay:.2f} s (target no greater: "
        f"{'met' if ours_delay <= their_delay else 'MISSED'})",
        f"swap_many p99 delay {p99:.2f} s (target < 1.5 s: {'met' if p99 < 1.5 else 'MISSED'})",
    ]


def _over(wall: float, ideal: float) -> str:
    return f"{wall / ideal:.3f}x" if ideal > 0 else "n/a"


def _report_quota(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    table = Table(
        "side",
        "wall s",
        "wall/ideal",
        "failed jobs",
        "802 answers",
        "API requests",
        "polls/task",
        "delay median s",
        "delay p99 s",
    )
    for side in QUOTA_SIDES:
        run = results[side][0]
        table.add(
            side,
            run["wall"],
            _over(run["wall"], run["ideal"]),
            run["failed"],
            run["refused"],
            run["requests"],
            run["polls_per_task"],
            run["delay_median"],
            run["delay_p99"],
        )
    print(table.render(), flush=True)
    for side in QUOTA_SIDES:
        if results[side][0]["errors"]:
            print(f"{side} errors: {results[side][0]['errors']}")
    verdicts = [
        f"{side} under the quota: {results[side][0]['failed']} failed jobs (target 0: "
        f"{'met' if results[side][0]['failed'] == 0 else 'MISSED'})"
        for side in QUOTA_SIDES[:2]
    ]
    told, untold = results["swap_many, rate_limit=Q"][0], results["swap_many"][0]
    versus = untold["wall"] / told["wall"]
    refused = untold["refused"] / max(1, untold["jobs"])
    verdicts += [
        f"swap_many told nothing: wall {versus:.3f}x that of rate_limit=Q (target <= 1.2x: "
        f"{'met' if versus <= 1.2 else 'MISSED'})",
        f"swap_many told nothing: {untold['refused']} answers 802, {refused:.2f} a job "
        f"(before adapting: 8.47 a job; target far fewer: {'met' if refused < 1 else 'MISSED'})",
    ]
    return verdicts


if __name__ == "__main__":
    sys.exit(main())
