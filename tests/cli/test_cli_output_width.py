"""Tables written to a file or a pipe keep whole file names and task ids: rich assumes 80 columns
there and would cut them (issue 27). Run as users run the command, in its own process, against
an emulator served from a thread."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

RUN_CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"
LONG_STEM = "holiday-2026-07-14-beach-at-sunset-with-the-whole-family-and-the-neighbours-dog"


@pytest.fixture
def served() -> Iterator[Emulator]:
    with Emulator(latency=0.05, seed=5).run_in_thread() as emulator:
        yield emulator


def run_piped(emulator: Emulator, folder: Path, *args: str) -> str:
    """The CLI with stdout to a pipe (not a terminal), as `miocreate ... | tee log` runs it."""
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("MIOCREATE_")},
        "MIOCREATE_BASE_URL": emulator.url,
        "MIOCREATE_CLIENT_ID": emulator.client_id,
        "MIOCREATE_CLIENT_SECRET": emulator.client_secret,
        "COLUMNS": "80",
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        cwd=folder,
        env=env,
        capture_output=True,  # stdout is a pipe
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_batch_table_in_a_pipe_holds_whole_names_and_task_ids(
    served: Emulator, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    write_sample_photo(photos / f"{LONG_STEM}.jpg", seed=2)
    write_sample_face(tmp_path / "a-face-with-a-rather-long-name-as-well.png", seed=3)

    out = run_piped(
        served,
        tmp_path,
        "batch",
        "photos",
        "--face",
        "a-face-with-a-rather-long-name-as-well.png",
        "-o",
        "swapped",
    )

    (task,) = served.ledger["tasks"]
    (row,) = [line for line in out.splitlines() if LONG_STEM in line]
    assert f"{LONG_STEM}.jpg" in row
    assert "a-face-with-a-rather-long-name-as-well.png" in row
    assert str(task["id"]) in row
    (saved,) = (tmp_path / "swapped").glob(f"{LONG_STEM}*")
    assert f"swapped/{saved.name}" in row
    assert len(row) > 80


COMMANDS = [
    [],
    ["swap"],
    ["swap-video"],
    ["faces"],
    ["swap-faces"],
    ["task"],
    ["batch"],
    ["journal", "status"],
    ["worker"],
    ["emulator"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda words: " ".join(words) or "miocreate")
def test_help_fits_80_columns(command: list[str]) -> None:
    """The help (and the CLI page of the docs, which renders it at 80 columns) is never cut."""
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI, *command, "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")
    long = [line for line in done.stdout.splitlines() if len(line) > 80]
    assert long == []
