"""Crash-point exploration of a journaled job (the way SQLite's own tests fail every I/O in
turn): every journal write (before and after it) and every API request (before it is sent, and
the creation while it is out) of one job's life is numbered; for each point in turn the job's
process is (a) SIGKILLed there and the job resumed, (b) made to fail that journal write once
and the job resumed. At every point: no task created twice (the emulator's ledger), and the
task created ends on disk or is reported uncertain."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

CHILD = Path(__file__).with_name("crash_point_child.py")


@contextlib.contextmanager
def fresh_emulator() -> Iterator[Emulator]:
    """An emulator for one point: a creation still out when its child was killed must not land
    in the next point's count."""
    with Emulator(latency=0.02, seed=5).run_in_thread() as emulator:
        yield emulator


class Life:
    """Runs the child for one point: a folder of its own, the emulator's tasks counted."""

    def __init__(self, emulator: Emulator, folder: Path) -> None:
        self.emulator = emulator
        self.folder = folder
        folder.mkdir()
        write_sample_photo(folder / "photo.jpg", seed=2, size=(160, 120))
        write_sample_face(folder / "face.png", seed=1)
        (folder / "out").mkdir()
        self.tasks_before = self.tasks()
        self.env = {
            **os.environ,
            "MIOCREATE_BASE_URL": emulator.url,
            "MIOCREATE_CLIENT_ID": emulator.client_id,
            "MIOCREATE_CLIENT_SECRET": emulator.client_secret,
        }

    def tasks(self) -> set[int]:
        return {int(task["id"]) for task in self.emulator.ledger["tasks"]}

    def run(self, *options: str) -> tuple[int, dict[str, Any] | None]:
        command = [sys.executable, str(CHILD), str(self.folder / "journal.sqlite")]
        command += [str(self.folder / "out"), str(self.folder / "points.log"), *options]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        assert done.returncode in (0, -9), done.stderr
        return done.returncode, json.loads(lines[-1]) if lines else None

    def points(self) -> list[str]:
        log = self.folder / "points.log"
        return log.read_text().splitlines() if log.exists() else []

    def check(self, point: str) -> None:
        """The resumed run's outcome against what the emulator created for this job."""
        _, final = self.run()
        assert final is not None, point
        created = sorted(self.tasks() - self.tasks_before)
        assert len(created) <= 1, f"{point}: the job's task was created twice: {created}"
        if final["error"] is None:
            assert created == [final["task_id"]], point
            assert Path(final["saved"]).stat().st_size > 0, point
        else:
            # Paid and not saved: only as an uncertain job, never silently.
            assert final["error"] == "SubmissionUncertainError", f"{point}: {final}"


# Some thirty runs of a child process, one per point: more than the default 120 s on a
# loaded machine.
@pytest.mark.timeout(360)
def test_every_crash_point_of_a_journaled_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fresh_emulator() as emulator:
        clean = Life(emulator, tmp_path / "clean")
        assert clean.run()[0] == 0
    points = clean.points()
    assert any("before submitting" in point for point in points)
    assert any("request image_swap" in point for point in points)
    writes = [n for n, point in enumerate(points, 1) if point.split()[1] == "before"]
    killed = failed = 0
    for number, point in enumerate(points, 1):
        with fresh_emulator() as emulator:
            life = Life(emulator, tmp_path / f"kill-{number}")
            if "request image_swap" in point:
                emulator.scenario("image_swap", fault="slow", delay=0.5)  # out at the kill
            code, _ = life.run("--kill-at", str(number))
            killed += code == -9
            life.check(f"killed at {point}")
    for number in writes:
        with fresh_emulator() as emulator:
            life = Life(emulator, tmp_path / f"fail-{number}")
            life.run("--fail-at", str(number))
            life.check(f"write failed at {points[number - 1]}")
            failed += 1
    with capsys.disabled():
        print(
            f"\ncrash points explored (SQLite journal): {len(points)} kill points "
            f"({killed} reached), {failed} failed journal writes"
        )
    assert killed >= len(points) - 2  # polls vary in number from run to run
