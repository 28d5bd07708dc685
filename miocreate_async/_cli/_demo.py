"""``miocreate demo``: the Quick start's swap, a real image face swap through the client against
the embedded emulator in vision mode, on public-domain portraits that installed packages ship.
Needs the ``emulator`` extra, not rich: it prints plain lines."""

from __future__ import annotations

import importlib.util
import io
import os
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
    #: The photo, the face and the result in one picture.
    side_by_side: Path
    #: Whether the emulator looked at the pixels (the vision packages are installed).
    vision: bool


#: The files one run writes, by role: a run's files share a number when earlier ones are there.
_ROLES = ("photo", "face", "swapped", "side-by-side")


async def run_demo(
    output: str | Path = "miocreate-demo-output", *, overwrite: bool = False
) -> DemoOutcome:
    """Start an emulator, swap the sample face into the sample photo, save the result image and
    the three side by side.

    With the vision packages the emulator looks at the pixels, and the samples are real
    public-domain portraits (see ``miocreate_async.emulator.samples``). Nothing in ``output``
    is ever replaced without ``overwrite``: when a file (or a symlink) already has one of the
    run's names, the whole run takes the next free number (``swapped-2.png``...), so the demo
    can be run again and again. Files are created exclusively, so a write never follows a
    symlink; with ``overwrite`` they are written beside and renamed over the old name, which
    replaces a symlink itself, never what it points to.
    """
    from ..emulator import Emulator, samples

    vision = samples.vision_available()
    photo_bytes, face_bytes = samples.photo(real=vision), samples.face(real=vision)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    names = _names(
        output,
        {
            "photo": _suffix(photo_bytes),
            "face": _suffix(face_bytes),
            "swapped": ".png" if vision else ".jpg",
            "side-by-side": ".png",
        },
        overwrite,
    )
    photo = _write(names["photo"], photo_bytes, overwrite)
    face = _write(names["face"], face_bytes, overwrite)
    with tempfile.TemporaryDirectory(prefix="miocreate-demo-") as data_dir:
        emulator = Emulator(vision=vision, latency=0.5, seed=7, data_dir=data_dir)
        async with emulator, emulator.client() as client:
            result = await client.swap_image(photo, face=face, hd=True, timeout=60)
            with tempfile.TemporaryDirectory(prefix="miocreate-demo-") as scratch:
                fetched = await result.download(Path(scratch) / "swapped")
                swapped_bytes = fetched.read_bytes()
    path = _write(names["swapped"], swapped_bytes, overwrite)
    side_by_side = _write(
        names["side-by-side"], _side_by_side(photo_bytes, face_bytes, swapped_bytes), overwrite
    )
    return DemoOutcome(result, path, photo, face, side_by_side, vision)


def _suffix(data: bytes) -> str:
    return ".png" if data.startswith(b"\x89PNG") else ".jpg"


def _names(output: Path, suffixes: dict[str, str], overwrite: bool) -> dict[str, Path]:
    """The run's file names: the plain ones, or with the first number none of them has yet."""
    number = 1
    while True:
        tail = "" if number == 1 else f"-{number}"
        names = {role: output / f"{role}{tail}{suffixes[role]}" for role in _ROLES}
        if overwrite or not any(os.path.lexists(path) for path in names.values()):
            return names
        number += 1


def _write(path: Path, data: bytes, overwrite: bool) -> Path:
    """Create ``path`` with ``data``: exclusively (a file or symlink there is an error, and
    nothing is followed), or with ``overwrite`` by renaming a new file over the name."""
    if not overwrite:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(path, flags | getattr(os, "O_BINARY", 0), 0o644)
        except FileExistsError:
            raise CliError(
                f"{relative(path)} appeared while the demo ran; run it again", 1
            ) from None
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        return path
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _side_by_side(*pictures: bytes) -> bytes:
    """The photo, the face and the result at one height, in a row, labelled (PNG)."""
    from PIL import Image, ImageDraw, ImageFont

    height, label, gap = 512, 36, 8
    try:
        font = ImageFont.load_default(size=22)
    except TypeError:  # Pillow 10.0: a fixed size
        font = ImageFont.load_default()
    images = []
    for data in pictures:
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
        images.append(rgb.resize((round(rgb.width * height / rgb.height), height)))
    width = sum(image.width for image in images) + gap * (len(images) + 1)
    canvas = Image.new("RGB", (width, height + label + 2 * gap), "white")
    draw = ImageDraw.Draw(canvas)
    left = gap
    for image, caption in zip(images, ("photo", "+ face", "= swapped"), strict=True):
        canvas.paste(image, (left, gap))
        draw.text((left + 4, height + gap + 6), caption, fill="black", font=font)
        left += image.width + gap
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return buffer.getvalue()


def _folder(name: str) -> Path:
    return Path(name).expanduser()


async def demo(options: Options) -> int:
    if importlib.util.find_spec("PIL") is None:
        raise CliError(
            "the demo needs the 'emulator' extra: pip install 'miocreate-async[emulator]'", 1
        )
    # Earlier results are kept: this run saves swapped-2.png and its inputs beside them (or
    # replaces them with --overwrite), so the Quick start can be run again in the same folder.
    output = _folder(options.text("output"))
    from ..emulator import samples

    vision = samples.vision_available()
    if not options.json:
        if vision:
            print(
                "Swapping Grace Hopper's face into astronaut Eileen Collins' portrait on the "
                "embedded emulator (vision mode)...",
                flush=True,
            )
        else:
            print(
                "Swapping a cartoon face into a cartoon photo on the embedded emulator (the "
                "vision packages of the 'emulator' extra are not installed)...",
                flush=True,
            )
    outcome = await run_demo(output, overwrite=options.overwrite)
    if options.json:
        print_json(
            {
                "path": outcome.path.resolve(),
                "photo": outcome.photo.resolve(),
                "face": outcome.face.resolve(),
                "side_by_side": outcome.side_by_side.resolve(),
                "vision": outcome.vision,
                "result": outcome.result,
            }
        )
        return 0
    credit = "  (NASA, public domain)" if outcome.vision else ""
    print(f"Photo:        {relative(outcome.photo)}{credit}")
    credit = "  (US Navy, public domain)" if outcome.vision else ""
    print(f"Face:         {relative(outcome.face)}{credit}")
    size = f"{outcome.result.width}x{outcome.result.height}"
    print(f"Swapped:      {relative(outcome.path)}  ({size})")
    print(f"Side by side: {relative(outcome.side_by_side)}")
    return 0
