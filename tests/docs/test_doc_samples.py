"""Every fenced Python sample of the documentation site (docs/**/*.md) and of README.md runs here,
against the emulator, as a reader would run it.

How a page's samples run:
- In order, in one namespace per page (a later sample may use what an earlier one defined), with
  top-level ``await`` allowed, on one event loop per page; a sample that calls ``anyio.run`` or
  ``asyncio.run`` itself runs as the script it is.
- In a temporary working folder holding the files the samples name (``photo.jpg``, ``me.jpg``,
  ``you.jpg``, ``face.png``, ``group.jpg`` with two faces, ``clip.mp4``, ``holiday.mp4``,
  ``big.mp4``, ``photos/`` with three photos), with ``MIOCREATE_BASE_URL``,
  ``MIOCREATE_CLIENT_ID`` and ``MIOCREATE_CLIENT_SECRET`` pointing at a fresh emulator, so
  ``MioCreate()`` works unchanged.
- The namespace starts with ``mc`` (a ``MioCreate()`` made from that environment, for fragments
  written as lines inside ``async with MioCreate() as mc:``), and for hidden set-up ``emulator``
  and ``serve_redis()`` (starts a real redis-server and sets ``REDIS_URL``; the page is skipped
  where redis-server or the distributed extra is missing).

Markers, an HTML comment on the line just before the fence (invisible on the site and on GitHub):
- ``<!-- sample: not run: REASON -->``: the sample is not executed; the reason is required.
- ``<!-- sample: pytest -->``: the sample is a test module; it runs under pytest in a subprocess.
- ``<!-- sample: setup: CODE -->``: hidden code run just before the sample (a scenario, a file).
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from miocreate_async import MioCreate
from miocreate_async.emulator import (
    Emulator,
    write_sample_face,
    write_sample_photo,
    write_sample_video,
)

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    path.relative_to(ROOT)
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    if "_build" not in path.parts
)
PYTHON = {"python", "py", "python3"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
MARKER = re.compile(
    r"<!--\s*sample:\s*(?P<what>not run|pytest|setup)\s*(?::\s*(?P<text>.*?))?-->", re.S
)


@dataclass(frozen=True)
class Sample:
    page: Path
    line: int  # of the fence's first code line, 1-based
    code: str
    mode: str  # "run", "pytest" or "not run"
    reason: str = ""
    setup: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def extract(page: Path) -> list[Sample]:
    """The Python fences of a page, with the marker comment that precedes each, if any."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    samples: list[Sample] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        language = (opening["info"].split() or [""])[0].lower()
        end = index + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        if language in PYTHON:
            body = [
                line[len(indent) :] if line.startswith(indent) else line
                for line in lines[index + 1 : end]
            ]
            mode, text = _marker(lines, index)
            samples.append(
                Sample(
                    page,
                    index + 2,
                    textwrap.dedent("\n".join(body)),
                    "run" if mode in ("run", "setup") else mode,
                    reason=text if mode == "not run" else "",
                    setup=text if mode == "setup" else "",
                )
            )
        index = end + 1
    return samples


def _marker(lines: list[str], fence_index: int) -> tuple[str, str]:
    """The marker comment ending on the last non-blank line before the fence."""
    end = fence_index - 1
    while end >= 0 and not lines[end].strip():
        end -= 1
    if end < 0 or not lines[end].rstrip().endswith("-->"):
        return "run", ""
    start = end
    while start > 0 and "<!--" not in lines[start]:
        start -= 1
    match = MARKER.search("\n".join(lines[start : end + 1]))
    if match is None:
        return "run", ""
    return match["what"], textwrap.dedent(match["text"] or "").strip()


def write_inputs(folder: Path) -> None:
    """The files the samples name, as a reader would have them."""
    write_sample_photo(folder / "photo.jpg")
    write_sample_photo(folder / "group.jpg", seed=3, faces=2)
    write_sample_face(folder / "me.jpg", seed=1)
    write_sample_face(folder / "you.jpg", seed=2)
    write_sample_face(folder / "face.png", seed=4)
    for name in ("clip.mp4", "holiday.mp4", "big.mp4"):
        write_sample_video(folder / name, duration=2.0, size=256 * 1024)
    (folder / "photos").mkdir()
    for seed in range(3):
        write_sample_photo(folder / "photos" / f"photo-{seed}.jpg", seed=seed)


@pytest.fixture
def emulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A working folder with the inputs, and the environment bound to a fresh emulator."""
    work = tmp_path / "work"
    work.mkdir()
    write_inputs(work)
    monkeypatch.chdir(work)
    with Emulator(latency=0.05, seed=0, data_dir=tmp_path / "emulator").run_in_thread() as emu:
        monkeypatch.delenv("MIOCREATE_TOKEN", raising=False)
        monkeypatch.setenv("MIOCREATE_BASE_URL", emu.url)
        monkeypatch.setenv("MIOCREATE_CLIENT_ID", emu.client_id)
        monkeypatch.setenv("MIOCREATE_CLIENT_SECRET", emu.client_secret)
        yield emu


def _compile(sample: Sample, source: str) -> object:
    # Padding keeps tracebacks on the page's own line numbers.
    padded = "\n" * (sample.line - 1) + source
    return compile(padded, str(ROOT / sample.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def _execute(code: object, namespace: dict[str, object], loop: asyncio.AbstractEventLoop) -> None:
    assert isinstance(code, type(_execute.__code__))
    if code.co_flags & inspect.CO_COROUTINE:
        loop.run_until_complete(eval(code, namespace))
    else:
        exec(code, namespace)


def run_page(page: Path, emulator: Emulator, serve_redis: Callable[[], str]) -> None:
    samples = [sample for sample in extract(page) if sample.mode == "run"]
    loop = asyncio.new_event_loop()
    mc = MioCreate()
    namespace: dict[str, object] = {
        "__name__": "__main__",
        "mc": mc,
        "emulator": emulator,
        "serve_redis": serve_redis,
    }
    try:
        for sample in samples:
            if sample.setup:
                _execute(_compile(sample, sample.setup), namespace, loop)
            _execute(_compile(sample, sample.code), namespace, loop)
    finally:
        loop.run_until_complete(mc.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def run_pytest_samples(page: Path, folder: Path) -> None:
    samples = [sample for sample in extract(page) if sample.mode == "pytest"]
    if not samples:
        return
    files = []
    for sample in samples:
        name = re.sub(r"\W", "_", f"test_{page.with_suffix('')}_{sample.line}") + ".py"
        (folder / name).write_text(sample.code, encoding="utf-8")
        files.append(name)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files]
    env = {key: value for key, value in os.environ.items() if not key.startswith("MIOCREATE_")}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    where = ", ".join(sample.where for sample in samples)
    assert done.returncode == 0, f"pytest samples of {where} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_samples_of_page_run(
    page: Path, emulated: Emulator, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def serve_redis() -> str:
        if shutil.which("redis-server") is None or importlib.util.find_spec("taskiq_redis") is None:
            pytest.skip(f"{page} needs redis-server and the distributed extra")
        url: str = request.getfixturevalue("redis_url")
        monkeypatch.setenv("REDIS_URL", url)
        return url

    run_page(page, emulated, serve_redis)
    run_pytest_samples(page, Path.cwd())


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_samples_not_run_say_why(page: Path) -> None:
    for sample in extract(page):
        if sample.mode == "not run":
            assert len(sample.reason) > 10, f"{sample.where}: say why it is not run"


def test_the_extractor_reads_markers_and_indented_fences(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\na = 1\n```\n\n<!-- sample: not run: needs the real service -->\n"
        "```python\nb = 2\n```\n\n- a list item:\n\n  ```py\n  c = 3\n  ```\n\n"
        "<!-- sample: setup: emulator.reset() -->\n```python\nd = 4\n```\n\n"
        "```console\n$ miocreate demo\n```\n",
        encoding="utf-8",
    )
    samples = extract(page)
    assert [(s.code, s.mode, s.reason, s.setup) for s in samples] == [
        ("a = 1", "run", "", ""),
        ("b = 2", "not run", "needs the real service", ""),
        ("c = 3", "run", "", ""),
        ("d = 4", "run", "", "emulator.reset()"),
    ]
    assert [s.line for s in samples] == [4, 9, 15, 20]
