"""Regenerate the pictures of the docs site and the README (docs/_static/*.jpg).

Run from the repository root, with the ``emulator`` and ``cli`` extras installed::

    python docs/make_pictures.py

Both pictures come from the project's own commands, as a reader would run them: ``miocreate
demo`` (the one-face side-by-side) and ``miocreate swap-faces`` on the emulator's vision mode (a
two-face swap of the sample group photo). They are saved as JPEG, resized to stay small.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from miocreate_async.emulator import Emulator, samples

STATIC = Path(__file__).resolve().parent / "_static"
WIDTH = 1200  # pixels: sharp on the site's 1280-px layout and well under 150 KB as JPEG


def miocreate(*arguments: str, env: dict[str, str] | None = None) -> None:
    # The console script installed beside this interpreter, as a reader runs it.
    command = [str(Path(sys.executable).with_name("miocreate")), *arguments]
    subprocess.run(command, check=True, env=env, timeout=300, stdout=subprocess.DEVNULL)


def save_small(picture: Image.Image, name: str) -> Path:
    picture = picture.convert("RGB")
    if picture.width > WIDTH:
        height = round(picture.height * WIDTH / picture.width)
        picture = picture.resize((WIDTH, height), Image.Resampling.LANCZOS)
    path = STATIC / name
    picture.save(path, "JPEG", quality=82, optimize=True, progressive=True)
    return path


def side_by_side(folder: Path) -> Path:
    miocreate("demo", "-o", str(folder / "demo"))
    return save_small(Image.open(folder / "demo" / "side-by-side.png"), "demo-side-by-side.jpg")


def two_face_swap(folder: Path) -> Path:
    group = folder / "group.png"
    group.write_bytes(samples.group_photo(real=True))
    (folder / "collins.png").write_bytes(samples.photo(real=True))
    (folder / "hopper.jpg").write_bytes(samples.face(real=True))
    swapped = folder / "group-swapped.png"
    with Emulator(vision=True, latency=0.1).run_in_thread() as emulator:
        env = {
            **os.environ,
            "MIOCREATE_BASE_URL": emulator.url,
            "MIOCREATE_CLIENT_ID": emulator.client_id,
            "MIOCREATE_CLIENT_SECRET": emulator.client_secret,
        }
        env.pop("MIOCREATE_TOKEN", None)
        # Face 1 is the astronaut (left), face 2 the admiral (right): each gets the other's.
        miocreate(
            "swap-faces", str(group), "--face", f"1={folder / 'hopper.jpg'}",
            "--face", f"2={folder / 'collins.png'}", "-o", str(swapped), env=env,
        )  # fmt: skip
    before = Image.open(group).convert("RGB")
    after = Image.open(swapped).convert("RGB")
    return save_small(_labelled([(before, "before"), (after, "after: faces 1 and 2 swapped")]),
                      "two-face-swap.jpg")  # fmt: skip


def _labelled(pictures: list[tuple[Image.Image, str]]) -> Image.Image:
    """The pictures in a row, each with a caption under it (as the demo's side-by-side)."""
    font = _font(48)  # readable once the sheet is scaled down to the page's width
    gap, caption = 12, 66
    height = max(picture.height for picture, _ in pictures)
    width = sum(picture.width for picture, _ in pictures) + gap * (len(pictures) - 1)
    sheet = Image.new("RGB", (width, height + caption), "white")
    draw = ImageDraw.Draw(sheet)
    left = 0
    for picture, text in pictures:
        sheet.paste(picture, (left, 0))
        draw.text((left + 8, height + 6), text, fill="black", font=font)
        left += picture.width + gap
    return sheet


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def main() -> None:
    STATIC.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="miocreate-pictures-") as name:
        for path in (side_by_side(Path(name)), two_face_swap(Path(name))):
            size = len(path.read_bytes())
            width, height = Image.open(io.BytesIO(path.read_bytes())).size
            print(f"{path.relative_to(Path.cwd())}: {width}x{height}, {size // 1024} KB")


if __name__ == "__main__":
    main()
