"""``miocreate worker --redis URL -j 32``: one worker of distributed batches (the distributed
extra). Ctrl-C drains it; a second Ctrl-C stops it at once."""

from __future__ import annotations

import argparse
import importlib.util
import logging
from typing import TYPE_CHECKING, cast

from ._args import Options, add_command, positive_float, positive_int
from ._common import CliError

if TYPE_CHECKING:
    from ..distributed import Durability
    from ._args import Subcommands

__all__ = ["add_redis", "check_extra", "durability", "register", "run_worker"]

NEEDS_EXTRA = (
    "this command needs the 'distributed' extra: pip install 'miocreate-async[distributed]'"
)


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands,
        "worker",
        "run a worker for distributed batches (miocreate batch --redis); Ctrl-C drains it",
        run_worker,
    )
    add_redis(parser, required=True)
    parser.add_argument(
        "-j", "--concurrency", type=positive_int, default=32, metavar="N",
        help="jobs in flight at once (default: 32)",
    )  # fmt: skip
    parser.add_argument(
        "--rate-limit", type=positive_float, metavar="N",
        help="API requests per second for ALL workers of the account together (one limiter in "
        "Redis: give every worker the same value)",
    )  # fmt: skip
    parser.add_argument(
        "--lease", type=positive_float, default=30.0, metavar="SECONDS",
        help="a dead worker's jobs are taken over this long after its last renewal (30)",
    )  # fmt: skip
    parser.add_argument(
        "--claim-idle", type=positive_float, default=60.0, metavar="SECONDS",
        help="a message taken but never acknowledged goes to another worker after this (60)",
    )  # fmt: skip
    parser.add_argument(
        "--poll-maximum", type=positive_float, default=5.0, metavar="SECONDS",
        help="longest gap between two polls of a task (5)",
    )  # fmt: skip
    parser.add_argument(
        "--url-sources", metavar="LIST",
        help="networks and hosts (comma-separated) or 'any' that URL inputs may also be read "
        "from; by default only public addresses (also MIOCREATE_URL_SOURCES)",
    )  # fmt: skip
    # -v/--verbose is the global option (it also logs takeovers and drains here).
    parser.add_argument("-v", dest="verbose", action="store_true", help="same as --verbose")


def add_redis(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--redis", required=required, metavar="URL",
        help="the Redis of the distributed batch: redis://host:6379/0 (rediss:// for TLS)",
    )  # fmt: skip
    parser.add_argument(
        "--durability",
        choices=["always", "everysec", "unchecked"],
        default="always",
        help="with --redis: what the Redis must guarantee, checked at start: always (default: "
        "appendonly yes, appendfsync always, noeviction), everysec (accepts appendfsync "
        "everysec: a crash may lose the last second and create a task twice) or unchecked",
    )


def check_extra() -> None:
    if importlib.util.find_spec("taskiq_redis") is None:
        raise CliError(NEEDS_EXTRA, 1)


def durability(options: Options) -> Durability:
    chosen = options.text("durability")
    assert chosen in ("always", "everysec", "unchecked")  # argparse's choices
    return cast("Durability", chosen)


async def run_worker(options: Options) -> int:
    check_extra()
    from .._config import PollPolicy
    from ..distributed import Worker
    from ..distributed._serve import serve

    if options.flag("verbose") and not options.debug:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    longest = options.number("poll_maximum")
    rate = options.optional_number("rate_limit")
    worker = Worker(
        options.text("redis"),
        concurrency=options.count("concurrency"),
        token=options.token,
        base_url=options.base_url,
        rate_limit=rate,
        lease=options.number("lease"),
        claim_idle=options.number("claim_idle"),
        url_sources=options.optional_text("url_sources"),
        durability=durability(options),
        poll=PollPolicy(
            first=min(0.5, longest),
            minimum=min(0.1, longest),
            maximum=longest,
            settle=min(1.0, longest),
        ),
    )
    await serve(worker)
    return 0
