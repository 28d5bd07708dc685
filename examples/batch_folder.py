"""Swap one face into every image and video of a folder, many at once, results as they finish.

    python examples/batch_folder.py photos/ me.jpg swapped/ --concurrency 20

Credentials and the service come from the environment (``MIOCREATE_CLIENT_ID``,
``MIOCREATE_CLIENT_SECRET``, ``MIOCREATE_BASE_URL``; the emulator's work too). The face is
uploaded once for the whole batch; a failed job is reported and the others go on. The exit
status is 0 only if every job succeeded. (``miocreate batch`` does the same with progress bars.)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from miocreate_async import MioCreate, SwapJob

__all__ = ["main", "swap_folder"]

MEDIA = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".mp4", ".m4v", ".mov", ".webm"}


def media_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MEDIA)


async def swap_folder(
    client: MioCreate, inputs: list[Path], face: Path, output: Path, *, concurrency: int = 8
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Swap ``face`` into each input; returns (saved files, [(failed input, why)])."""
    jobs = [SwapJob(image=path, face=face) for path in inputs]
    saved: list[Path] = []
    failed: list[tuple[Path, str]] = []
    async with client.swap_many(jobs, concurrency=concurrency) as results:
        async for outcome in results:
            source = inputs[outcome.index]
            if outcome.result is None:
                failed.append((source, str(outcome.error)))
                print(f"failed  {source.name}: {outcome.error}", file=sys.stderr)
                continue
            # Never replace a file: download() refuses unless overwrite=True.
            suffix = Path(outcome.result.merge_key).suffix
            path = await outcome.result.download(output / f"{source.stem}-swapped{suffix}")
            saved.append(path)
            print(f"saved   {path}  (task {outcome.task_id})")
    return saved, failed


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("folder", type=Path)
    parser.add_argument("face", type=Path)
    parser.add_argument("output", type=Path, nargs="?", default=Path("swapped"))
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    inputs = media_in(args.folder)
    async with MioCreate() as client:
        saved, failed = await swap_folder(
            client, inputs, args.face, args.output, concurrency=args.concurrency
        )
    print(f"{len(saved)} saved, {len(failed)} failed")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
