"""One tiny run of every benchmark, so that they do not rot (their figures are not checked).

They run at once, each as ``python -m benchmarks.<name> --smoke`` in its own process (with
its own emulator process), as a developer runs them; each test then waits for its own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = (
    "call_overhead",
    "batch",
    "upload",
    "import_time",
    "emulator_capacity",
    "journal",
    "vision",
)
#: Seconds a smoke run may take, all running at once on two busy cores.
TIMEOUT = 100


@pytest.fixture(scope="module")
def smoke_runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    runs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name in BENCHMARKS:
            runs[name] = subprocess.Popen(
                [sys.executable, "-m", f"benchmarks.{name}", "--smoke"],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        yield runs
    finally:
        for process in runs.values():
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_smoke_run(name: str, smoke_runs: dict[str, subprocess.Popen[str]]) -> None:
    process = smoke_runs[name]
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, stderr[-3000:]
    assert "(smoke size)" in stdout
    assert "machine: " in stdout
    # A table was printed, then the verdicts (or, for the emulator, its capacity).
    assert "|---" in stdout
    last = stdout.strip().splitlines()[-1]
    assert "target" in last or "sustains" in last
