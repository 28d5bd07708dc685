"""``miocreate demo``: a real swap of real portraits in vision mode, shown side by side, and a
folder's existing files and symlinks never replaced or followed."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from miocreate_async._cli import EXIT_OK, main
from miocreate_async.emulator import samples

NAMES = ("photo.png", "face.jpg", "swapped.png", "side-by-side.png")

pytestmark = [
    pytest.mark.skipif(not samples.vision_available(), reason="needs the vision extra"),
    pytest.mark.e2e,
]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["demo", "--json", *args]) == EXIT_OK
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def _pixels(path: Path) -> bytes:
    with Image.open(path) as image:
        data: bytes = image.convert("RGB").tobytes()
    return data


def test_demo_swaps_real_portraits_and_shows_them_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run(capsys, "-o", str(tmp_path))
    assert out["vision"] is True
    paths = [Path(out[role]) for role in ("photo", "face", "path", "side_by_side")]
    assert [path.name for path in paths] == list(NAMES)
    photo, face, swapped, side_by_side = paths
    assert photo.read_bytes() == samples.photo()
    assert face.read_bytes() == samples.face()
    before, after = _pixels(photo), _pixels(swapped)
    pixels = [(before[i : i + 3], after[i : i + 3]) for i in range(0, len(before), 3)]
    changed = sum(1 for old, new in pixels if old != new) / len(pixels)
    assert 0.02 < changed < 0.2  # the face, and only around it
    with Image.open(side_by_side) as image:
        assert image.height > 512
        assert image.width > 3 * 450  # the photo, the face and the result in a row


def test_demo_never_replaces_or_follows_what_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not the demo's")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "photo.png").write_text("mine")
    os.symlink(outside, folder / "face.jpg")
    os.symlink(tmp_path / "missing", folder / "swapped.png")  # dangling
    os.symlink(outside, folder / "side-by-side-2.png")
    out = _run(capsys, "-o", str(folder))
    # The first free number for the whole set: -2 is taken by one of its names.
    assert Path(out["path"]).name == "swapped-3.png"
    assert Path(out["photo"]).name == "photo-3.png"
    assert (folder / "photo.png").read_text() == "mine"
    assert os.readlink(folder / "face.jpg") == str(outside)
    assert os.readlink(folder / "swapped.png") == str(tmp_path / "missing")
    assert outside.read_text() == "not the demo's"
    assert not (tmp_path / "missing").exists()

    # --overwrite replaces the names themselves (a symlink becomes a file), never their targets.
    out = _run(capsys, "-o", str(folder), "--overwrite")
    assert Path(out["path"]) == folder / "swapped.png"
    for name in NAMES:
        assert not (folder / name).is_symlink()
    assert outside.read_text() == "not the demo's"
    assert not (tmp_path / "missing").exists()
    with Image.open(io.BytesIO((folder / "face.jpg").read_bytes())) as image:
        assert image.size == (512, 600)
