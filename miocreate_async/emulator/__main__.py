"""``python -m miocreate_async.emulator`` (and ``miocreate emulator``): serve until interrupted.

The flags are the fields of ``EmulatorSettings`` that carry a help text, so a new setting is a
new flag without a second list to keep in step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

import attrs

from ._app import ADMIN_PREFIX
from ._server import Emulator
from ._settings import EmulatorSettings

__all__ = ["main", "parser"]

PROG = "python -m miocreate_async.emulator"

# Within 80 columns, as argparse wraps the rest of the help (and the CLI page renders it).
_EPILOG = f"""\
Admin routes (never recorded): GET {ADMIN_PREFIX}ledger, POST {ADMIN_PREFIX}reset,
POST {ADMIN_PREFIX}scenario, POST {ADMIN_PREFIX}clock.
The first line printed is the URL.
Examples:
  %(prog)s --port 0 --latency image=2-4,video=15-30 --seed 1
  %(prog)s --vision --access-log
  %(prog)s --credits 100 --request-quota 20 \\
      --bandwidth-per-connection 1000000
"""


def _flag_name(field: attrs.Attribute[object]) -> str:
    return "--" + field.name.replace("_", "-")


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog=prog,
        description="A local MioCreate Face Swap API for tests, demos and development:\n"
        "tokens, presigned storage, tasks with real results, the documented codes,\n"
        "seeded faults.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    cli.add_argument("--port", type=int, default=8765, help="port (8765); 0 picks a free one")
    for field in attrs.fields(EmulatorSettings):
        help_text = field.metadata.get("help")
        if not help_text:
            continue
        if isinstance(field.default, bool):
            flag = _flag_name(field)
            cli.add_argument(
                flag, dest=field.name, action="store_true", default=None, help=help_text
            )
            continue
        shown = "" if field.default is None else f" ({field.default!r})"
        cli.add_argument(
            _flag_name(field),
            dest=field.name,
            type=field.metadata.get("parse") or str,
            default=None,
            metavar=field.metadata.get("metavar") or field.name.upper(),
            help=help_text + shown,
        )
    return cli


def settings_from(args: argparse.Namespace) -> EmulatorSettings:
    """The settings the parsed flags give (defaults where a flag was not given)."""
    options = {
        field.name: getattr(args, field.name)
        for field in attrs.fields(EmulatorSettings)
        if field.metadata.get("help") and getattr(args, field.name) is not None
    }
    return EmulatorSettings(**options)


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
        print(f"  ledger:        {emulator.url}{ADMIN_PREFIX}ledger")
        print(f"  mode:          {'vision' if emulator.settings.vision else 'cartoon'}")
        print("Press Ctrl+C to stop.", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    args = parser(prog).parse_args(argv)
    try:
        settings = settings_from(args)
    except (ValueError, TypeError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if settings.access_log:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger = logging.getLogger("miocreate_async.emulator")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    emulator = Emulator(settings, host=args.host, port=args.port)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(emulator))
    except RuntimeError as exc:  # vision packages missing, say
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
