"""The soak (``benchmarks/soak_distributed.py``) in small: 40 jobs on 3 worker processes
randomly SIGKILLed or SIGSTOPped, Redis restarted once: every job one outcome, nothing created
twice, every failure an uncertain creation (the script asserts them)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from benchmarks._common import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.processes]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_a_small_soak_loses_nothing_and_creates_nothing_twice() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak_distributed", "--jobs", "40", "--seed", "7",
         "--burners", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "jobs 40" in run.stdout
    assert "created twice 0" in run.stdout
    assert "redis restarts 1" in run.stdout
