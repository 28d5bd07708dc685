"""``miocreate journal status PATH``: what a batch's journal holds, even while the batch runs.

Counts by state (the resume line: done, in flight, uncertain, to do), then the uncertain jobs
(a creation request that may have been paid for) and the results that expire within 24 hours,
then the spend report: tasks created by kind and day, how they ended, the results to save.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .._journal import JobRecord, JobState, SQLiteJournal, Summary
from .._journal._spend import spend_report
from ._args import Options, add_command
from ._common import CliError, Json, print_json
from ._console import stdout_console
from ._spend import print_spend

if TYPE_CHECKING:
    from rich.console import Console

    from ._args import Subcommands

__all__ = ["DEFAULT_NAME", "journal_file", "register"]

#: The journal of ``miocreate batch``, in its output folder.
DEFAULT_NAME = ".miocreate-journal.sqlite"
#: Results expiring sooner than this are listed (and warned about on resume).
_SOON = 24 * 3600.0


def journal_file(text: str) -> Path:
    """The journal named on the command line: a file, or a batch's output folder holding one."""
    path = Path(text).expanduser()
    path = path / DEFAULT_NAME if path.is_dir() else path
    if not path.is_file():
        raise CliError(f"no journal at {path}")
    return path


def register(commands: Subcommands) -> None:
    parser = add_command(commands, "journal", "look into a batch's journal")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    status = add_command(
        actions,
        "status",
        "counts by state, the uncertain jobs and the results about to expire",
        journal_status,
    )
    status.add_argument(
        "path",
        metavar="PATH",
        nargs="?",
        help=f"the journal, or a batch's output folder (its {DEFAULT_NAME})",
    )
    status.add_argument(
        "--redis", metavar="URL", help="a distributed batch's Redis (with --batch), not a file"
    )
    status.add_argument(
        "--batch", metavar="NAME", help="with --redis: the distributed batch's name"
    )


async def journal_status(options: Options) -> int:
    if options.optional_text("redis") or options.optional_text("batch"):
        return await _redis_status(options)
    if not options.optional_text("path"):
        raise CliError("give a journal PATH, or --redis URL --batch NAME", status=2)
    path = journal_file(options.text("path"))
    meta, found, uncertain, succeeded = await SQLiteJournal.inspect(path)
    summary = Summary(
        found.counts, downloads=path.name == DEFAULT_NAME or bool(found["downloaded"])
    )
    spend = spend_report(await SQLiteJournal.read_records(path))
    soon = time.time() + _SOON
    expiring = [r for r in succeeded if r.expires_at is not None and r.expires_at <= soon]
    if options.json:
        print_json(
            {
                "path": str(path.resolve()),
                "base_url": meta.base_url,
                "library_version": meta.library_version,
                "schema_version": meta.schema_version,
                "summary": dict(summary.as_dict()),
                "uncertain": [_job(record) for record in uncertain],
                "expiring": [_job(record) for record in expiring],
                "spend": spend.as_dict(),
            }
        )
        return 0
    console = stdout_console()
    console.print(f"journal {path} ({meta.base_url}, library {meta.library_version})")
    _report(console, summary, uncertain, expiring)
    print_spend(spend, path)
    return 0


def _report(
    console: Console,
    summary: Summary,
    uncertain: list[JobRecord],
    expiring: list[JobRecord],
    *,
    distributed: bool = False,
) -> None:
    console.print(f"  {summary}")
    states = ", ".join(f"{state.value} {summary[state]}" for state in JobState if summary[state])
    console.print(f"  by state: {states or 'no jobs'}")
    if uncertain:
        console.print(
            f"uncertain ({summary.uncertain}): a creation request may have reached the service "
            "and been paid for; the API cannot list tasks, so only you can decide. "
            + (
                "A distributed batch never sends them again."
                if distributed
                else "`--resubmit-uncertain` sends them again (each may be paid twice)."
            ),
            style="yellow",
        )
        for record in uncertain:
            # A late creation reply recorded on the job: its task is known.
            task = f", task {record.task_id}" if record.task_id is not None else ""
            console.print(f"  {record.label}  (job {record.id}{task})")
    if expiring:
        console.print(
            f"expiring within 24 hours ({len(expiring)}): run the batch again to download them",
            style="yellow",
        )
        for record in expiring:
            console.print(f"  task {record.task_id}  {_when(record.expires_at)}  {record.label}")


def _job(record: JobRecord) -> dict[str, Json]:
    return {
        "id": record.id,
        "index": record.index,
        "state": record.state.value,
        "label": record.label,
        "task_id": record.task_id,
        "expires_at": _when(record.expires_at) if record.expires_at else None,
    }


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


async def _redis_status(options: Options) -> int:
    """The same report for a distributed batch, read from its Redis (while it runs, too)."""
    redis_url, name = options.optional_text("redis"), options.optional_text("batch")
    if not redis_url or not name or options.optional_text("path"):
        raise CliError("a distributed batch takes --redis URL and --batch NAME (no PATH)", 2)
    from ._worker import check_extra

    check_extra()
    from redis.asyncio import Redis

    from ..distributed._journal import RedisJournal

    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        journal = RedisJournal(redis, name)
        meta = await journal.meta()
        if meta is None:
            raise CliError(f"no batch {name!r} in that Redis")
        summary = await journal.counts()
        uncertain = [r async for r in journal.records({JobState.UNCERTAIN})]
        soon = time.time() + _SOON
        expiring = [
            r
            async for r in journal.records({JobState.SUCCEEDED})
            if r.expires_at is not None and r.expires_at <= soon
        ]
    finally:
        await redis.aclose()
    summary = Summary(dict(summary.counts), downloads=bool(summary[JobState.DOWNLOADED]))
    if options.json:
        print_json(
            {
                "batch": name,
                "base_url": meta.base_url,
                "library_version": meta.library_version,
                "schema_version": meta.schema_version,
                "summary": dict(summary.as_dict()),
                "uncertain": [_job(record) for record in uncertain],
                "expiring": [_job(record) for record in expiring],
            }
        )
        return 0
    console = stdout_console()
    console.print(f"distributed batch {name} ({meta.base_url}, library {meta.library_version})")
    _report(console, summary, uncertain, expiring, distributed=True)
    return 0
