"""``python -m miocreate_async.emulator``: serve the emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from ._server import Emulator
from ._settings import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorSettings

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m miocreate_async.emulator",
        description="A local MioCreate Face Swap API: tokens, presigned storage, tasks, faults.",
    )
    cli.add_argument("--host", default="127.0.0.1")
    cli.add_argument("--port", type=int, default=8765, help="0 picks any free port")
    cli.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    cli.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    cli.add_argument(
        "--latency",
        help="seconds a task takes: 0.5, a range 1-3, or per kind image=2-4,video=15-30,faces=1 "
        "(default image=1-3,video=4-8,faces=0.5-1.5)",
    )
    cli.add_argument("--seed", type=int, help="seed of faults and latencies (reproducible runs)")
    cli.add_argument("--token-ttl", type=float, default=3600.0, help="token lifetime, seconds")
    cli.add_argument(
        "--fail-rate", type=float, default=0.0, help="share answered 500 or a 502 page"
    )
    cli.add_argument("--cut-rate", type=float, default=0.0, help="share cut without a reply")
    cli.add_argument("--slow-rate", type=float, default=0.0, help="share answered after a delay")
    cli.add_argument("--slow-delay", type=float, default=30.0, help="delay of slow replies")
    cli.add_argument("--credits", type=int, default=1_000_000)
    cli.add_argument("--request-quota", type=float, help="requests per second before code 802")
    cli.add_argument("--data-dir", help="where stored objects live (a temporary dir by default)")
    cli.add_argument(
        "--vision",
        action="store_true",
        default=None,
        help="look at the pixels: real face detection, 602/603 from content, real swaps and "
        "playable videos (needs the vision extra)",
    )
    return cli


async def _serve(emulator: Emulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    async with emulator:
        # The URL comes first, alone on its line: parent processes read it from there.
        print(f"MioCreate emulator serving at {emulator.url}", flush=True)
        print(f"  client_id:     {emulator.client_id}")
        print(f"  client_secret: {emulator.client_secret}")
        print(f"  data dir:      {emulator.data_dir}")
        print(f"  ledger:        {emulator.url}/_emulator/ledger")
        print("Press Ctrl+C to stop.", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = EmulatorSettings.build(
            client_id=args.client_id,
            client_secret=args.client_secret,
            latency=args.latency,
            seed=args.seed,
            token_ttl=args.token_ttl,
            fail_rate=args.fail_rate,
            cut_rate=args.cut_rate,
            slow_rate=args.slow_rate,
            slow_delay=args.slow_delay,
            credits=args.credits,
            request_quota=args.request_quota,
            data_dir=args.data_dir,
            vision=args.vision,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(Emulator(host=args.host, port=args.port, settings=settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
