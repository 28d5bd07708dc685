"""The Quick start's main job: a real image face swap through the client, against the embedded
emulator, on sample inputs it draws itself. Needs the ``emulator`` extra (Pillow)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ._models import ImageSwapResult

__all__ = ["DemoOutcome", "run_demo"]


class DemoOutcome:
    def __init__(self, result: ImageSwapResult, path: Path, photo: Path, face: Path) -> None:
        self.result = result
        self.path = path
        self.photo = photo
        self.face = face


async def run_demo(
    output: str | Path = "miocreate-demo-output", *, overwrite: bool = False
) -> DemoOutcome:
    """Start an emulator, swap the sample face into the sample photo, save the result image.

    The result is saved as ``swapped.<ext>``; without ``overwrite``, a run that finds one already
    there saves ``swapped-2.<ext>`` (and so on), so the demo can be run again and again.
    """
    from .emulator import Emulator
    from .emulator._samples import write_sample_face, write_sample_photo

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


def _free_name(path: Path) -> Path:
    number = 1
    while path.exists():
        number += 1
        path = path.with_name(f"{path.stem.rsplit('-', 1)[0]}-{number}{path.suffix}")
    return path
