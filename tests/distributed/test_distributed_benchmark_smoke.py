"""One tiny run of the scale-out benchmark (1 and 2 workers), so that it does not rot; its
figures are not checked here (they go to benchmarks/README.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

REPO = Path(__file__).resolve().parents[2]
ENABLE = "install redis-server (apt-get install redis-server) and the distributed extra"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason=f"no redis-server: {ENABLE}")
def test_the_scale_out_benchmark_runs() -> None:
    pytest.importorskip("taskiq_redis", reason=ENABLE)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_out", "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(smoke size)" in done.stdout
    assert "|---" in done.stdout
    assert "target" in done.stdout.strip().splitlines()[-1]
