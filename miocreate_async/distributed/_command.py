"""``miocreate worker``: one worker process; Ctrl-C drains it, a second Ctrl-C stops it at once.

Also ``python -m miocreate_async.distributed worker`` (the same arguments).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

import anyio

__all__ = ["add_worker_arguments", "main", "run_worker"]


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis", required=True, metavar="URL", help="redis://host:port/db")
    parser.add_argument(
        "-j", "--concurrency", type=int, default=32, help="jobs in flight at once (32)"
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        metavar="N",
        help="API requests per second for ALL workers of the account together (shared in Redis; "
        "give every worker the same value)",
    )
    parser.add_argument(
        "--lease", type=float, default=30.0, help="seconds before another worker takes over (30)"
    )
    parser.add_argument(
        "--claim-idle",
        type=float,
        default=60.0,
        help="seconds before a message a worker took but never acknowledged goes to another (60)",
    )
    parser.add_argument(
        "--poll-maximum",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="longest gap between two polls of a task (5)",
    )
    parser.add_argument("--base-url", help="API base URL (else MIOCREATE_BASE_URL)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each takeover")


async def _serve(args: argparse.Namespace) -> None:
    from .._poller import PollPolicy
    from . import Worker

    worker = Worker(
        args.redis,
        concurrency=args.concurrency,
        base_url=args.base_url,
        rate_limit=args.rate_limit,
        lease=args.lease,
        claim_idle=args.claim_idle,
        poll=PollPolicy(
            first=min(0.5, args.poll_maximum),
            minimum=min(0.1, args.poll_maximum),
            maximum=args.poll_maximum,
            settle=min(1.0, args.poll_maximum),
        ),
    )
    drain = anyio.Event()
    async with anyio.create_task_group() as group:

        async def signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                async for _ in received:
                    if drain.is_set():
                        print("stopping now; jobs in flight are taken over after their lease")
                        group.cancel_scope.cancel()
                        return
                    print(
                        "draining: no new jobs; jobs in flight finish or go back to the queue "
                        "(Ctrl-C again to stop at once)",
                        flush=True,
                    )
                    drain.set()

        group.start_soon(signals)
        print(f"worker {worker.name}: serving {args.redis} with {args.concurrency} jobs at once")
        print("Press Ctrl+C to drain.", flush=True)
        await worker.run(drain)
        group.cancel_scope.cancel()


def run_worker(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    anyio.run(_serve, args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m miocreate_async.distributed")
    commands = parser.add_subparsers(dest="command", required=True)
    add_worker_arguments(commands.add_parser("worker", help="run a worker"))
    args = parser.parse_args(argv)
    return run_worker(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
