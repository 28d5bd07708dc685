"""Spend on the command line, against the emulator (in-process ``main([...])``): the dry run
sends nothing, ``--max-tasks`` stops at its budget and leaves the rest to a later run, and
``journal status`` reports what was spent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from miocreate_async._cli import main
from miocreate_async.emulator import (
    Emulator,
    write_sample_face,
    write_sample_photo,
    write_sample_video,
)

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def served() -> Any:
    """A fresh emulator of this module's own: the ledger counts this test's requests only."""
    with Emulator(latency=0.05, seed=3).run_in_thread() as emulator:
        yield emulator


@pytest.fixture
def folder(served: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("MIOCREATE_BASE_URL", served.url)
    monkeypatch.setenv("MIOCREATE_CLIENT_ID", served.client_id)
    monkeypatch.setenv("MIOCREATE_CLIENT_SECRET", served.client_secret)
    for name in ("MIOCREATE_TOKEN", "MIOCREATE_PRICES", "MIOCREATE_LOG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    media = tmp_path / "media"
    media.mkdir()
    for i in range(3):
        write_sample_photo(media / f"p{i}.jpg", seed=i)
    write_sample_video(media / "clip.mp4", duration=2.5, size=64 * 1024)
    write_sample_face(tmp_path / "face.png", seed=1)
    return media


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, Any]:
    capsys.readouterr()
    status = main(["--json", *map(str, args)])
    return status, json.loads(capsys.readouterr().out)


def creations(emulator: Emulator) -> int:
    operations = [r["operation"] for r in emulator.ledger["requests"]]
    return sum(op in ("image_swap", "video_swap") for op in operations)


def test_the_dry_run_sends_nothing_and_prices_what_it_would_do(
    served: Emulator, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = served.ledger["requests_total"]
    batch: list[str | Path] = ["batch", folder, "--face", "face.png", "-o", "out"]
    status, unknown = cli(capsys, *batch, "--dry-run")
    assert status == 0
    assert unknown["by_kind"] == {"image": 3, "video": 1}
    assert unknown["video_seconds"] == pytest.approx(2.5)
    assert unknown["to_create"] == 4
    assert unknown["credits"] is None  # no prices set: unknown, never a guess
    status, priced = cli(capsys, *batch, "--dry-run", "--prices", "image=1,video_per_second=2")
    assert priced["credits"] == pytest.approx(3 * 1 + 2.5 * 2)
    status, capped = cli(capsys, *batch, "--dry-run", "--max-tasks", "1", "--prices", "image=1")
    assert capped["to_create"] == 1
    # Nothing reached the service: no upload, no creation, not even a token.
    assert served.ledger["requests_total"] == before
    assert not (Path("out") / ".miocreate-journal.sqlite").exists()


def test_max_tasks_stops_at_its_budget_and_a_rerun_does_the_rest(
    served: Emulator, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = folder.parent / "photos"
    photos.mkdir()
    for path in sorted(folder.glob("*.jpg")):
        path.rename(photos / path.name)
    batch: list[str | Path] = ["batch", photos, "--face", "face.png", "-o", "out"]

    status, first = cli(capsys, *batch, "--max-tasks", "2")
    assert status == 1
    assert first["succeeded"] == 2
    assert creations(served) == 2  # none beyond the budget
    refused = [job for job in first["jobs"] if job["status"] != "succeeded"]
    assert len(refused) == 1
    assert "max_tasks" in json.dumps(refused[0])

    status, report = cli(capsys, "journal", "status", "out")
    assert report["summary"]["to_do"] == 1  # resumable, not failed for good
    assert report["summary"]["failed"] == 0
    spend = report["spend"]
    assert spend["tasks_created"] == 2
    assert spend["created_by_kind"] == {"image": 2}
    assert spend["results_saved"] == 2
    assert spend["uncertain"] == 0

    status, estimate = cli(capsys, *batch, "--dry-run")
    assert (estimate["done"], estimate["to_create"]) == (2, 1)

    status, second = cli(capsys, *batch, "--max-tasks", "5")
    assert status == 0
    assert second["succeeded"] == 3
    assert creations(served) == 3  # only the job left was created: nothing paid twice
