"""``miocreate demo``: the Quick start's swap on the embedded emulator. Needs the ``emulator``
extra (Pillow), not rich: it prints plain lines."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ._cli_common import CliError, print_json, relative

__all__ = ["run_demo_command"]


def _folder(name: str) -> Path:
    return Path(name).expanduser()


async def run_demo_command(options: Any) -> int:
    if importlib.util.find_spec("PIL") is None:
        raise CliError(
            "the demo needs the 'emulator' extra: pip install 'miocreate-async[emulator]'", 1
        )
    from ._demo import run_demo

    # An earlier result is kept: this run saves swapped-2.jpg beside it (or replaces it with
    # --overwrite), so the Quick start can be run again in the same folder.
    output = _folder(options.output)
    if not options.json:
        print("Swapping a sample face into a sample photo on the embedded emulator...", flush=True)
    outcome = await run_demo(output, overwrite=options.overwrite)
    if options.json:
        print_json(
            {
                "path": outcome.path.resolve(),
                "photo": outcome.photo.resolve(),
                "face": outcome.face.resolve(),
                "result": outcome.result,
            }
        )
        return 0
    print(f"Photo:   {relative(outcome.photo)}")
    print(f"Face:    {relative(outcome.face)}")
    print(f"Swapped: {relative(outcome.path)}  ({outcome.result.width}x{outcome.result.height})")
    return 0
