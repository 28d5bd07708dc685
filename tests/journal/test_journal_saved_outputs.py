"""A result on disk is taken as saved only when its size AND content match (review case 6): a
user's own file of the same size at that name is never taken as the result, nor replaced."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def served() -> Iterator[Emulator]:
    with Emulator(latency=0.02, seed=3).run_in_thread() as emulator:
        yield emulator


def run(emulator: Emulator, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MIOCREATE_BASE_URL": emulator.url,
        "MIOCREATE_CLIENT_ID": emulator.client_id,
        "MIOCREATE_CLIENT_SECRET": emulator.client_secret,
    }
    command = [sys.executable, "-c", CLI, *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def batch(tmp_path: Path) -> list[str | Path]:
    photos = tmp_path / "photos"
    photos.mkdir()
    for n in range(2):
        write_sample_photo(photos / f"p{n}.jpg", seed=n)
    write_sample_face(tmp_path / "face.png", seed=1)
    return ["batch", photos, "--face", tmp_path / "face.png", "-o", tmp_path / "out"]


def first_output(batch: list[str | Path]) -> tuple[Path, Path]:
    out = Path(batch[-1])
    (result,) = sorted(out.glob("p0*"))
    return result, out / ".miocreate-journal.sqlite"


def same_size_other_content(path: Path) -> bytes:
    mine = bytes(255 - b for b in path.read_bytes())
    path.write_bytes(mine)
    return mine


def test_a_downloaded_result_replaced_by_the_users_file_is_not_taken(
    served: Emulator, batch: list[str | Path]
) -> None:
    assert run(served, *batch).returncode == 0
    result, _ = first_output(batch)
    mine = same_size_other_content(result)
    again = run(served, *batch)
    assert again.returncode != 0
    assert "the output exists" in again.stderr
    assert result.read_bytes() == mine


@pytest.mark.parametrize("users_file", [True, False], ids=["users-file", "own-result"])
def test_a_result_saved_before_its_record_is_taken_only_by_its_content(
    served: Emulator, batch: list[str | Path], users_file: bool
) -> None:
    assert run(served, *batch).returncode == 0
    result, journal = first_output(batch)
    original = result.read_bytes()
    # As if the run was killed after saving the file, before recording it: "succeeded".
    with contextlib.closing(sqlite3.connect(journal)) as db, db:
        db.execute(
            "UPDATE jobs SET state = 'succeeded', path = NULL WHERE path = ?",
            (str(result.resolve()),),
        )
    mine = same_size_other_content(result) if users_file else original
    again = run(served, *batch)
    if users_file:
        assert again.returncode == 1
        assert "not this job's result" in again.stdout + again.stderr
        assert result.read_bytes() == mine  # neither taken nor replaced
    else:
        assert again.returncode == 0, again.stderr
        assert result.read_bytes() == original
    assert not list(result.parent.glob(".miocreate-check-*"))
