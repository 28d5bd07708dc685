"""``miocreate demo``: the Quick start's swap, a real image face swap through the client against
the embedded emulator, on sample inputs the emulator draws. Needs the ``emulator`` extra
(Pillow), not rich: it prints plain lines."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from .._models import ImageSwapResult
from ._args import Options, add_command, add_output
from ._common import CliError, print_json, relative

if TYPE_CHECKING:
    from ._args import Subcommands

__all__ = ["DemoOutcome", "register", "run_demo"]


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands, "demo", "swap a sample face into a sample photo on the embedded emulator", demo
    )
    add_output(
        parser,
        "folder for the sample inputs and the result (default: ./miocreate-demo-output)",
        metavar="FOLDER",
        default="miocreate-demo-output",
    )


@attrs.frozen
class DemoOutcome:
    result: ImageSwapResult
    path: Path
    photo: Path
    face: Path


async def run_demo(
    output: str | Path = "miocreate-demo-output", *, overwrite: bool = False
) -> DemoOutcome:
    """Start an emulator, swap the sample face into the sample photo, save the result image.

    The result is saved as ``swapped.<ext>``; without ``overwrite``, a run that finds one already
    there saves ``swapped-2.<ext>`` (and so on), so the demo can be run again and again.
    """
    from ..emulator import Emulator, write_sample_face, write_sample_photo

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    photo = write_sample_photo(output / "photo.jpg", seed=7)
    face = write_sample_face(output / "face.png", seed=11)
    with tempfile.TemporaryDirectory(prefix="miocreate-demo-") as data_dir:
        emulator = Emulator(latency=0.5, seed=7, data_dir=data_dir)
        async with emulator, emulator.client() as client:
            result = await client.swap_image(photo, face=face, hd=True, timeout=60)
            suffix = Path(result.merge_key).suffix or ".jpg"
            target = output / f"swapped{suffix}"
            if not overwrite:
                target = _free_name(target)
            path = await result.download(target, overwrite=overwrite)
    return DemoOutcome(result, path, photo, face)


def _folder(name: str) -> Path:
    return Path(name).expanduser()


def _free_name(path: Path) -> Path:
    number = 1
    while path.exists():
        number += 1
        path = path.with_name(f"{path.stem.rsplit('-', 1)[0]}-{number}{path.suffix}")
    return path


async def demo(options: Options) -> int:
    if importlib.util.find_spec("PIL") is None:
        raise CliError(
            "the demo needs the 'emulator' extra: pip install 'miocreate-async[emulator]'", 1
        )
    # An earlier result is kept: this run saves swapped-2.jpg beside it (or replaces it with
    # --overwrite), so the Quick start can be run again in the same folder.
    output = _folder(options.text("output"))
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
