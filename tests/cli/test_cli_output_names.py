"""``miocreate batch`` names every output (and its temporary file) within the file system's
limit before anything is paid: a long input name is shortened with a hash, the same each run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from miocreate_async._cli import EXIT_OK, main
from miocreate_async._transfer._get import fit_name
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(latency=0.05, seed=3).run_in_thread() as emulator:
        monkeypatch.delenv("MIOCREATE_TOKEN", raising=False)
        monkeypatch.setenv("MIOCREATE_BASE_URL", emulator.url)
        monkeypatch.setenv("MIOCREATE_CLIENT_ID", emulator.client_id)
        monkeypatch.setenv("MIOCREATE_CLIENT_SECRET", emulator.client_secret)
        monkeypatch.chdir(tmp_path)
        yield emulator


def test_a_250_character_input_name_creates_no_task_that_cannot_be_saved(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    long_name = "a" * 250 + ".jpg"
    write_sample_photo(folder / long_name, seed=1)
    write_sample_photo(folder / "short.jpg", seed=2)
    face = write_sample_face(tmp_path / "face.png", seed=3)
    command = ["--json", "batch", str(folder), "--face", str(face), "-o", str(tmp_path / "out")]

    assert main(command) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["succeeded"] == 2
    saved = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert len(saved) == 2
    assert "short-swapped.jpg" in saved
    assert all(len(os.fsencode(name)) <= 255 for name in saved)
    assert any(name.startswith("aaaa") for name in saved)
    tasks = len(served.ledger["tasks"])
    assert tasks == 2

    # Run again: the shortened name is the same, so the resume finds both results.
    assert main(command) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["succeeded"] == 2
    assert len(served.ledger["tasks"]) == tasks


@pytest.mark.parametrize("name", ["x" * 300, "é" * 200 + ".jpg", "a.b" * 90 + "-swapped"])
def test_fitted_names_fit_are_stable_and_distinct(name: str) -> None:
    fitted = fit_name(name, 200)
    assert len(os.fsencode(fitted)) <= 200
    assert fit_name(name, 200) == fitted
    assert fit_name(name + "2", 200) != fitted
    assert fit_name("short.jpg", 200) == "short.jpg"
