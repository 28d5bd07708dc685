"""Swap one face into every image and video of a folder, many at once, results as they finish.

    python examples/batch_folder.py photos/ me.jpg swapped/ --concurrency 20

Credentials and the service come from the environment (``MIOCREATE_CLIENT_ID``,
``MIOCREATE_CLIENT_SECRET``, ``MIOCREATE_BASE_URL``; the emulator's work too). The face is
uploaded once for the whole batch; a failed job is reported and the others go on. The exit
status is 0 only if every job succeeded. (``miocreate batch`` does the same with progress bars.)

Safe to run again: an input whose result is already in the output folder is skipped *before*
anything is submitted (a swap costs credits), unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from miocreate_async import MioCreate, MioCreateError, SwapJob

__all__ = ["already_done", "main", "media_in", "swap_folder"]

MEDIA = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".mp4", ".m4v", ".mov", ".webm"}


def media_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MEDIA)


def output_stem(source: Path) -> str:
    """The result of ``photo.jpg`` is ``photo-swapped.<the result's own extension>``."""
    return f"{source.stem}-swapped"


def already_done(source: Path, output: Path) -> Path | None:
    """The result of ``source`` already in ``output``, whatever its extension, if any."""
    if not output.is_dir():
        return None
    for candidate in output.iterdir():
        if candidate.is_file() and candidate.stem == output_stem(source):
            return candidate
    return None


async def swap_folder(
    client: MioCreate,
    inputs: list[Path],
    face: Path,
    output: Path,
    *,
    concurrency: int = 8,
    overwrite: bool = False,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Swap ``face`` into each input; returns (saved files, [(failed input, why)]).

    Inputs whose result exists are skipped before anything is submitted, unless ``overwrite``.
    """
    todo = []
    for source in inputs:
        done = None if overwrite else already_done(source, output)
        if done is None:
            todo.append(source)
        else:
            print(f"skipped {source.name}: {done} exists (pass --overwrite to redo it)")
    jobs = [SwapJob(media=path, face=face) for path in todo]
    saved: list[Path] = []
    failed: list[tuple[Path, str]] = []
    async with client.swap_many(jobs, concurrency=concurrency) as results:
        async for outcome in results:
            source = todo[outcome.index]
            try:
                result = outcome.unwrap()
                suffix = Path(result.merge_key).suffix
                # download() never replaces a file unless overwrite=True.
                path = await result.download(
                    output / f"{output_stem(source)}{suffix}", overwrite=overwrite
                )
            except MioCreateError as error:
                failed.append((source, str(error)))
                print(f"failed  {source.name}: {error}", file=sys.stderr)
                continue
            saved.append(path)
            print(f"saved   {path}  (task {outcome.task_id})")
    return saved, failed


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("folder", type=Path)
    parser.add_argument("face", type=Path)
    parser.add_argument("output", type=Path, nargs="?", default=Path("swapped"))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--overwrite", action="store_true", help="redo inputs already swapped")
    args = parser.parse_args(argv)
    inputs = media_in(args.folder)
    async with MioCreate() as client:
        saved, failed = await swap_folder(
            client,
            inputs,
            args.face,
            args.output,
            concurrency=args.concurrency,
            overwrite=args.overwrite,
        )
    print(f"{len(saved)} saved, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
