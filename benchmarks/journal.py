"""The journal's cost: a batch with a journal versus the same batch without, the resume of a
100,000-job journal, and the journal's size per job.

- Batch: the same jobs through ``swap_many``, with ``journal=`` (a fresh SQLite file, WAL,
  ``synchronous=FULL``) and without, in turn, each run in a fresh process against the emulator
  in its own process; the figure is the median of the rounds' wall-time ratios.
- Resume: a synthetic journal of N jobs (most downloaded, some succeeded, in flight, uncertain,
  to do) is written, then a fresh process resumes it: ``open`` (the check, "submitting" becomes
  "uncertain", the counts: the resume line), then the CLI's read of every record, then a whole
  ``swap_many`` pass over the N jobs, every one finished, so every outcome comes from the
  journal without a request.

    python -m benchmarks.journal [--smoke | --full] [--rounds N]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    EmulatorProcess,
    Table,
    base_parser,
    header,
    in_turn,
    median,
    ratio,
    run_worker,
    serve_worker,
    size_of,
)
from benchmarks.batch import PHOTOS, write_inputs

SIDES = ("no journal", "journal")
#: The synthetic journal's mix: shares of downloaded, succeeded, submitted, submitting, pending.
MIX = (0.9, 0.04, 0.03, 0.01, 0.02)


# --- the measured runs (worker processes) -----------------------------------------------------


async def _batch(spec: dict[str, Any]) -> dict[str, Any]:
    from miocreate_async import MioCreate, PollPolicy, SwapJob

    inputs = Path(spec["inputs"])
    face = inputs / "face.png"
    jobs = [
        SwapJob(media=inputs / f"photo-{n % PHOTOS}.jpg", face=face, id=f"job-{n}")
        for n in range(spec["jobs"])
    ]
    journal = Path(spec["journal"]) if spec["side"] == "journal" else None
    failed = 0
    start = time.perf_counter()
    async with (
        MioCreate(spec["client_id"], spec["client_secret"], base_url=spec["url"]) as mc,
        mc.swap_many(
            jobs,
            concurrency=spec["concurrency"],
            journal=journal,
            poll=PollPolicy(first=0.2, maximum=1.0),
        ) as results,
    ):
        async for outcome in results:
            failed += outcome.error is not None
    wall = time.perf_counter() - start
    size = _size(journal) if journal else 0
    return {"wall": wall, "failed": failed, "journal_bytes": size}


def _size(journal: Path) -> int:
    return sum(path.stat().st_size for path in journal.parent.glob(journal.name + "*"))


async def _resume(spec: dict[str, Any]) -> dict[str, Any]:
    from miocreate_async import Key, MioCreate, SQLiteJournal, SwapJob
    from miocreate_async._journal import JournalMeta

    path = Path(spec["journal"])
    meta = JournalMeta(base_url=spec["url"], client="", library_version="bench")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    async with SQLiteJournal(path) as journal:
        summary = await journal.open(meta)
        expiring = [r async for r in journal.records([_state("succeeded")], limit=20)]
    timings["open"] = time.perf_counter() - start
    start = time.perf_counter()
    _, records = await SQLiteJournal.read(path)
    timings["read"] = time.perf_counter() - start
    # Every job finished: a pass over all of them sends no request.
    done = [r.id for r in records if r.state.value in ("downloaded", "succeeded")]
    jobs = [
        SwapJob(media=Key(f"in/{job_id}.jpg"), face=Key("in/face.png"), id=job_id)
        for job_id in done
    ]
    start = time.perf_counter()
    outcomes = failed = 0
    async with (
        MioCreate(token="unused", base_url=spec["url"]) as mc,
        mc.swap_many(jobs, concurrency=64, journal=path) as results,
    ):
        async for outcome in results:
            outcomes += 1
            failed += outcome.error is not None
    timings["pass"] = time.perf_counter() - start
    return {
        **timings,
        "line": str(summary),
        "expiring": len(expiring),
        "records": len(records),
        "outcomes": outcomes,
        "failed": failed,
        "bytes": _size(path),
    }


def _state(name: str) -> Any:
    from miocreate_async import JobState

    return JobState(name)


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    return await (_resume(spec) if spec["side"] == "resume" else _batch(spec))


# --- the synthetic journal --------------------------------------------------------------------


def write_synthetic(path: Path, count: int, base_url: str) -> None:
    """A journal of ``count`` jobs in the MIX of states, as a batch would have left it."""
    import asyncio
    import sqlite3

    from miocreate_async._journal import (
        JournalMeta,
        NewJob,
        SQLiteJournal,
        describe_input,
        job_identity,
    )

    async def create() -> None:
        async with SQLiteJournal(path) as journal:
            await journal.open(JournalMeta(base_url=base_url, client="", library_version="bench"))
            new = []
            face = describe_input("in/face.png", "in/face.png")
            for n in range(count):
                job_id = f"job-{n}"
                image = describe_input(f"in/{job_id}.jpg", f"in/{job_id}.jpg")
                _, fingerprint = job_identity(image, face, hd=False, kind=None, explicit_id=job_id)
                new.append(NewJob(job_id, n, fingerprint, f"photo{n}.jpg + face.png"))
            await journal.register(new)

    asyncio.run(create())
    result = (
        '{"type":"image","size":183412,"width":640,"height":480,'
        '"merge_key":"results/2026/11/26/abcdef0123456789.jpg",'
        '"thumbnail_key":"results/2026/11/26/abcdef0123456789-thumb.jpg",'
        '"thumbnail_width":160,"thumbnail_height":120}'
    )
    expires = time.time() + 6 * 86400
    bounds, total = [], 0.0
    for share in MIX:
        total += share
        bounds.append(int(total * count))
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE jobs SET state = 'downloaded', task_id = 105000000 + idx, result = ?, "
            "expires_at = ? + idx, path = '/data/out/photo' || idx || '-swapped.jpg', "
            "kind = 'image' WHERE idx < ?",
            (result, expires, bounds[0]),
        )
        db.execute(
            "UPDATE jobs SET state = 'succeeded', task_id = 105000000 + idx, result = ?, "
            "expires_at = ? + idx, kind = 'image' WHERE idx >= ? AND idx < ?",
            (result, expires, bounds[0], bounds[1]),
        )
        db.execute(
            "UPDATE jobs SET state = 'submitted', task_id = 105000000 + idx, kind = 'image' "
            "WHERE idx >= ? AND idx < ?",
            (bounds[1], bounds[2]),
        )
        db.execute(
            "UPDATE jobs SET state = 'submitting', kind = 'image' WHERE idx >= ? AND idx < ?",
            (bounds[2], bounds[3]),
        )
    db.close()


# --- the driver -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    cli = base_parser(__doc__ or "", rounds=3)
    args = cli.parse_args(argv)
    if args.worker:
        return serve_worker(args.worker, _worker)
    jobs = size_of(args, smoke=20, default=300, full=1_000)
    concurrency = size_of(args, smoke=8, default=100, full=100)
    latency = size_of(args, smoke="0.1-0.2", default="1-2", full="2-4")
    synthetic = size_of(args, smoke=2_000, default=100_000, full=100_000)
    rounds = args.rounds or size_of(args, smoke=1, default=3, full=5)
    header(
        "Journal: swap_many with and without a journal; resuming a big journal",
        args,
        f"{jobs} image jobs, concurrency {concurrency}, emulator latency {latency}; {rounds} "
        f"rounds of {' / '.join(SIDES)} in turn, each run in a fresh process; then the resume "
        f"of a synthetic {synthetic:,}-job journal in a fresh process.",
    )
    with tempfile.TemporaryDirectory(prefix="miocreate-bench-") as scratch:
        folder = Path(scratch)
        write_inputs(folder)
        with EmulatorProcess("--latency", latency, "--seed", "7") as emulator:

            def run(side: str, index: int) -> dict[str, Any]:
                emulator.reset()
                journal = folder / f"batch-{index}-{side.replace(' ', '-')}.sqlite"
                spec = {
                    **emulator.spec(),
                    "side": side,
                    "inputs": scratch,
                    "jobs": jobs,
                    "concurrency": concurrency,
                    "journal": str(journal),
                }
                return run_worker("benchmarks.journal", spec)

            results = in_turn(rounds, SIDES, run)
            url = emulator.url
        big = folder / "big.sqlite"
        started = time.perf_counter()
        write_synthetic(big, synthetic, url)
        written = time.perf_counter() - started
        resume = run_worker(
            "benchmarks.journal",
            {"side": "resume", "url": url, "jobs": synthetic, "journal": str(big)},
        )
    print(_report(results, resume, jobs, synthetic, written))
    return 0


def _report(
    results: dict[str, list[dict[str, Any]]],
    resume: dict[str, Any],
    jobs: int,
    synthetic: int,
    written: float,
) -> str:
    table = Table("side", "wall s (median)", "failed", "journal bytes", "bytes/job")
    for side in SIDES:
        runs = results[side]
        size = median([run["journal_bytes"] for run in runs])
        table.add(
            side,
            median([run["wall"] for run in runs]),
            sum(run["failed"] for run in runs),
            size,
            size / jobs if size else 0.0,
        )
    over = ratio(
        [r["wall"] for r in results["journal"]], [r["wall"] for r in results["no journal"]]
    )
    resumed = Table("resume step", "seconds")
    resumed.add("open: check, submitting -> uncertain, counts, expiring", resume["open"])
    resumed.add(f"read all {resume['records']:,} records (the CLI's resume)", resume["read"])
    resumed.add(f"swap_many over {resume['outcomes']:,} finished jobs", resume["pass"])
    total = resume["open"] + resume["read"]
    lines = [
        table.render(),
        "",
        f"journal vs none: {over:.3f}x the wall time (target <= 1.05x: "
        f"{'met' if over <= 1.05 else 'MISSED'})",
        "",
        f"synthetic journal: {synthetic:,} jobs written in {written:.1f} s, "
        f"{resume['bytes'] / synthetic:.0f} bytes/job; resume line: {resume['line']}",
        resumed.render(),
        "",
        f"resume of {synthetic:,} jobs (open + read every record): {total:.2f} s "
        f"(target < 2 s: {'met' if total < 2 else 'MISSED'}); a whole pass handing out every "
        f"finished job from the journal: {resume['pass']:.2f} s "
        f"({resume['pass'] / max(resume['outcomes'], 1) * 1e6:.0f} us/job, "
        f"{resume['failed']} failed)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
