"""The README's five-minute tour sits right after the Quick start and holds what it promises;
its snippets (and the docs' progress callback) type-check with mypy --strict and pyright; the
public API is type-complete for pyright.

The tour's samples themselves run once, with every other sample of the README and the docs
site, in test_doc_samples.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_doc_samples import Sample, extract

from miocreate_async.emulator._settings import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[2]
README = Path("README.md")
BIN = Path(sys.executable).parent


def tour() -> list[Sample]:
    text = (ROOT / README).read_text(encoding="utf-8")
    start = text.index("\n## A five-minute tour\n")
    end = text.index("\n## ", start + 1)
    first, last = text.count("\n", 0, start) + 1, text.count("\n", 0, end) + 1
    return [sample for sample in extract(README) if first < sample.line < last]


def test_the_tour_sits_between_the_quick_start_and_the_reference() -> None:
    text = (ROOT / README).read_text(encoding="utf-8")
    titles = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert titles.index("A five-minute tour") == titles.index("Quick start") + 1
    samples = tour()
    programs = [sample.code for sample in samples if sample.mode == "run"]
    tests = [sample.code for sample in samples if sample.mode == "pytest"]
    assert len(programs) == 3  # one swap, one batch, one error handled
    assert len(tests) == 1
    assert "swap_image" in programs[0]
    assert "swap_many" in programs[1]
    assert "except NoFaceDetectedError" in programs[2]
    assert "miocreate_sample_photo" in tests[0]
    # The shell set-up names the emulator's own credentials.
    assert f"MIOCREATE_CLIENT_ID={DEFAULT_CLIENT_ID}" in text
    assert f"MIOCREATE_CLIENT_SECRET={DEFAULT_CLIENT_SECRET}" in text


def test_the_tour_setup_writes_the_sample_files(tmp_path: Path) -> None:
    text = (ROOT / README).read_text(encoding="utf-8")
    (line,) = [ln for ln in text.splitlines() if ln.startswith(".venv/bin/python -c ")]
    command = line.replace(".venv/bin/python", f'"{sys.executable}"', 1)
    done = subprocess.run(
        command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "photo.jpg").stat().st_size > 0
    assert (tmp_path / "me.jpg").stat().st_size > 0


# --- item 11: the snippets type-check; the public API is type-complete -----------------------


@pytest.fixture(scope="module")
def snippets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("snippets")
    for number, sample in enumerate(tour(), 1):
        (folder / f"tour_{number}.py").write_text(sample.code)
    # The progress callback of the big-files guide (``total`` may be None), as a user writes it.
    guide = extract(Path("docs/guides/big-files.md"))
    body = "\n".join(sample.code for sample in guide if "progress=" in sample.code)
    assert "total: int | None" in body
    (folder / "progress.py").write_text(
        "from miocreate_async import MioCreate\n\n\n"
        "async def snippet(mc: MioCreate) -> None:\n" + textwrap.indent(body, "    ")
    )
    return folder


@pytest.mark.typecheck
def test_the_snippets_pass_mypy_strict(snippets: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippets)],
        cwd=snippets,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout


def pyright(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("pyright", path=str(BIN))
    if executable is None:
        pytest.skip("pyright is not installed (it is in the dev extra)")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["VIRTUAL_ENV"] = str(BIN.parent)
    return subprocess.run(
        [executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.typecheck
def test_the_snippets_pass_pyright(snippets: Path) -> None:
    done = pyright("--pythonpath", sys.executable, str(snippets), cwd=snippets)
    assert done.returncode == 0, done.stdout


@pytest.mark.typecheck
def test_the_public_api_is_type_complete(tmp_path: Path) -> None:
    done = pyright("--verifytypes", "miocreate_async", "--ignoreexternal", cwd=tmp_path)
    assert "Type completeness score: 100%" in done.stdout, done.stdout[-4000:]
