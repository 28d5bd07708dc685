"""Spend on the command line: ``miocreate batch --dry-run`` (the estimate), ``--max-tasks N``
and ``--prices``; and the spend report of ``miocreate journal status``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .._batch import SwapJob
from .._errors import InvalidInputError
from .._estimate import PRICES_ENV, Prices, estimate_jobs
from .._journal._report import SpendReport
from ._args import Options
from ._common import CliError, print_json
from ._console import stdout_console

__all__ = ["add_spend_options", "dry_run", "max_tasks_of", "print_spend"]


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_spend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="say what the batch would do and cost (jobs by kind, video seconds, what the "
        "journal has done, credits, time), uploading and creating nothing",
    )
    parser.add_argument(
        "--max-tasks",
        type=_non_negative,
        metavar="N",
        help="create at most N tasks (uncertain ones count); the other jobs stay to do for a "
        "later run",
    )
    parser.add_argument(
        "--prices",
        metavar="SPEC",
        help="credits per swap for --dry-run, e.g. image=1,image_hd=2,video_per_second=0.5,"
        f"video_hd_per_second=1 (default: ${PRICES_ENV}; unknown without it)",
    )


def max_tasks_of(options: Options) -> int | None:
    value = options.optional_number("max_tasks")
    return None if value is None else int(value)


async def dry_run(jobs: list[SwapJob], journal: Path | None, options: Options) -> int:
    """Print the estimate of the batch; nothing is uploaded or created."""
    spec = options.optional_text("prices")
    try:
        prices = Prices.parse(spec) if spec is not None else Prices.from_env()
    except InvalidInputError as error:
        raise CliError(f"--prices: {error.message}") from None
    estimate = await estimate_jobs(
        jobs,
        prices=prices,
        journal=journal,
        concurrency=options.count("concurrency"),
        max_tasks=max_tasks_of(options),
        resubmit_uncertain=options.flag("resubmit_uncertain"),
    )
    if options.json:
        print_json({"dry_run": True, **estimate.as_dict()})
        return 0
    console = stdout_console()
    console.print("dry run: nothing is uploaded or created")
    for line in estimate.lines():
        console.print(f"  {line}")
    if estimate.credits is None:
        console.print(
            f"  (prices are unknown until you set them: --prices or ${PRICES_ENV}; the service "
            "publishes none)"
        )
    return 0


def print_spend(report: SpendReport, journal: str | os.PathLike[str]) -> None:
    """The spend report's lines, under ``journal status``."""
    console = stdout_console()
    console.print("spend:")
    for line in report.lines():
        console.print(f"  {line}")
    if report.expiring:
        console.print(
            f"  or run the batch again (same command, journal {journal}) to save them all",
            style="yellow",
        )
