"""Issue 11, item 9: the CLI refuses before paying, and says how to collect a paid result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

EXIT_USAGE = 2


@pytest.fixture(scope="module")
def served() -> Iterator[Emulator]:
    with Emulator(latency=0.05, seed=11).run_in_thread() as emulator:
        yield emulator


def _command() -> list[str]:
    script = shutil.which("miocreate", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script]
    code = "import sys; from miocreate_async._cli import main; sys.exit(main())"
    return [sys.executable, "-c", code]


def run(served: Emulator, cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MIOCREATE_BASE_URL": served.url,
        "MIOCREATE_CLIENT_ID": served.client_id,
        "MIOCREATE_CLIENT_SECRET": served.client_secret,
    }
    env.pop("MIOCREATE_TOKEN", None)
    return subprocess.run(
        [*_command(), *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return write_sample_photo(tmp_path / "photo.jpg"), write_sample_face(tmp_path / "face.png")


def _uploads(served: Emulator) -> int:
    return len(served.ledger["uploads"])


def test_dangling_symlink_output_is_refused_before_upload(
    served: Emulator, tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    photo, face = inputs
    out = tmp_path / "out.jpg"
    out.symlink_to(tmp_path / "nowhere" / "target.jpg")
    before = _uploads(served)
    done = run(served, tmp_path, "swap", photo, "--face", face, "-o", out)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert _uploads(served) == before
    assert out.is_symlink()
    assert not (tmp_path / "nowhere").exists()


def test_dangling_symlink_default_output_is_refused_before_upload(
    served: Emulator, tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    photo, face = inputs
    (tmp_path / "photo-swapped.jpg").symlink_to(tmp_path / "gone.jpg")
    before = _uploads(served)
    done = run(served, tmp_path, "swap", photo, "--face", face)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert _uploads(served) == before
    assert not (tmp_path / "gone.jpg").exists()


def test_output_name_too_long_is_refused_before_upload(
    served: Emulator, tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    photo, face = inputs
    before = _uploads(served)
    done = run(served, tmp_path, "swap", photo, "--face", face, "-o", "n" * 300 + ".jpg")
    assert done.returncode == EXIT_USAGE, done.stderr
    assert _uploads(served) == before


def test_long_output_name_whose_temporary_file_would_not_fit(
    served: Emulator, tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    photo, face = inputs
    name = "m" * 250 + ".jpg"
    done = run(served, tmp_path, "swap", photo, "--face", face, "-o", name)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / name).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_paid_result_that_cannot_be_saved_says_how_to_collect_it(
    served: Emulator, tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    photo, face = inputs
    tasks_before = {task["id"] for task in served.ledger["tasks"]}
    served.scenario("storage_get", fault="http", http_status=403, count=50)
    try:
        done = run(served, tmp_path, "swap", photo, "--face", face, "-o", tmp_path / "r.jpg")
        created = [task["id"] for task in served.ledger["tasks"] if task["id"] not in tasks_before]
    finally:
        served.reset()
    assert done.returncode != 0
    assert len(created) == 1
    assert "miocreate task" in done.stderr, done.stderr
    assert str(created[0]) in done.stderr
