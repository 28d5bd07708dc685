"""The documentation site builds with warnings as errors, as ``.ci/run`` builds it: a public
name missing from the API reference, a docstring that breaks reST, or a broken cross-reference
fails here, in the test suite every engineer runs before landing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="the docs extra is not installed")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]
    command += ["-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stderr[-4000:]}"
    for page in ("index", "quickstart", "guides/many-swaps", "reference/client", "changelog"):
        assert (tmp_path / "html" / f"{page}.html").is_file()
