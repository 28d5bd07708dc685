"""Kill a journaled batch for real (SIGKILL at seeded random moments), run it again until it is
done, and judge by the emulator's ledger: nothing paid twice, every result downloaded, files
complete. The emulator runs in a process of its own, as the batch does."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from miocreate_async._cli._journal import DEFAULT_NAME
from miocreate_async.emulator import write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent
REPO = HERE.parent.parent
PHOTOS = 16


@contextmanager
def emulator_process(data: Path, *options: str) -> Iterator[str]:
    command = [sys.executable, "-m", "miocreate_async.emulator", "--port", "0"]
    command += ["--data-dir", str(data), *options]
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert "http" in first, first
            yield first.split()[-1]
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def ledger(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_emulator/ledger", timeout=30) as reply:
        data: dict[str, Any] = json.load(reply)
        return data


def inputs(folder: Path) -> dict[str, str]:
    """The photos and the face; returns each photo's sha256 -> its name."""
    folder.mkdir()
    write_sample_face(folder / "face.png", seed=1)
    names = {}
    for n in range(PHOTOS):
        path = write_sample_photo(folder / f"photo{n:02}.jpg", seed=n)
        names[hashlib.sha256(path.read_bytes()).hexdigest()] = path.stem
    return names


def run_killed(
    command: list[str],
    journal: Path,
    rng: random.Random,
    kills: int,
    most: float,
    env: dict[str, str] | None = None,
) -> list[float]:
    """Start ``command`` ``kills`` times, each killed with SIGKILL a random delay after its
    journal exists (so that a slow start on a loaded machine does not eat the delay). Each run's
    exit status and output are printed: a run that ends on its own says why."""
    delays = []
    for _ in range(kills):
        delay = rng.uniform(0.0, most)
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, env=env)
            started = time.monotonic()
            while not journal.exists() and process.poll() is None:
                if time.monotonic() - started > 60:
                    process.kill()
                    process.wait()
                    pytest.fail("the batch did not start")
                time.sleep(0.01)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
            delays.append(delay)
            print(f"killed after {delay:.2f}s: exit {process.returncode}")
            for name, stream in (("stdout", out), ("stderr", err)):
                stream.seek(0)
                text = stream.read()[-2000:].strip()
                if text:
                    print(f"  {name}: {text}")
    return delays


def explained(done: subprocess.CompletedProcess[str]) -> str:
    """A run's exit status and output, for an assertion's message."""
    return f"exit {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"


def run_to_the_end(command: list[str]) -> list[dict[str, Any]]:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, explained(done)
    return [json.loads(line) for line in done.stdout.splitlines()]


def judge(
    url: str,
    photos: dict[str, str],
    outputs: Path,
    uncertain: set[str],
    *,
    kills: int,
    resubmitted: bool = False,
) -> None:
    """From the ledger: each image submitted once (twice only if uncertain and resubmitted),
    each result downloaded (again only after a kill cut its download), the files complete."""
    book = ledger(url)
    digest = {upload["key"]: upload["sha256"] for upload in book["uploads"]}
    per_image = Counter(photos[digest[task["request"]["main_key"]]] for task in book["tasks"])
    for name, count in per_image.items():
        assert count == 1 or (count == 2 and name in uncertain), (name, count, uncertain)
    gets = Counter(
        r["path"].split("?")[0].lstrip("/").split("/", 1)[-1]
        for r in book["requests"]
        if r["operation"] == "storage_get"
    )
    # A kill mid-download can leave a hidden ``.name.xxxx.part``; never a partial final file.
    files = {
        path.stem.removesuffix("-swapped"): path
        for path in outputs.iterdir()
        if not path.name.startswith(".")
    }
    for stem, path in files.items():
        assert stem in photos.values()
        data = path.read_bytes()
        assert data[:2] == b"\xff\xd8"  # a whole JPEG: it starts...
        assert data[-2:] == b"\xff\xd9"  # ...and ends
    expected = set(photos.values()) if resubmitted else set(photos.values()) - uncertain
    assert set(files) == expected
    # Each file was downloaded once, but for downloads a kill cut short (4 at a time).
    assert len(files) <= sum(gets.values()) <= len(files) + 4 * kills
    print(f"tasks {len(book['tasks'])}, downloads {sum(gets.values())}, uncertain {uncertain}")


@pytest.mark.parametrize("seed", [1])
def test_a_swap_many_script_killed_again_and_again_pays_once(tmp_path: Path, seed: int) -> None:
    photos = inputs(tmp_path / "in")
    outputs = tmp_path / "out"
    outputs.mkdir()
    journal = tmp_path / "photos.journal"
    rng = random.Random(seed)
    with emulator_process(tmp_path / "emu", "--latency", "0.2-0.8", "--seed", str(seed)) as url:
        command = [sys.executable, str(HERE / "kill_swap_many.py"), url]
        command += [str(tmp_path / "in"), str(outputs), str(journal)]
        run_killed(command, journal, rng, kills=5, most=2.0)
        print("after the kills:", Counter(t["status"] for t in ledger(url)["tasks"]))
        final = run_to_the_end(command)
        assert sorted(line["index"] for line in final) == list(range(PHOTOS))
        uncertain = {
            f"photo{line['index']:02}"
            for line in final
            if line["error"] == "SubmissionUncertainError"
        }
        assert all(line["ok"] or line["error"] == "SubmissionUncertainError" for line in final)
        judge(url, photos, outputs, uncertain, kills=5)
        if uncertain:
            # The user's choice: send them again (each may be paid twice).
            again = run_to_the_end([*command, "--resubmit-uncertain"])
            assert all(line["ok"] for line in again)
            judge(url, photos, outputs, uncertain, kills=5, resubmitted=True)
        # Once more: everything comes from the journal, not one request.
        before = ledger(url)["requests_total"]
        last = run_to_the_end(command)
        assert all(line["ok"] and line["resumed"] for line in last)
        assert ledger(url)["requests_total"] == before


CLI = "import sys; from miocreate_async._cli import main; sys.exit(main(sys.argv[1:]))"


def test_a_cli_batch_killed_again_and_again_pays_once(tmp_path: Path) -> None:
    photos = inputs(tmp_path / "in")
    outputs = tmp_path / "out"
    rng = random.Random(5)
    with emulator_process(tmp_path / "emu", "--latency", "0.2-0.8", "--seed", "5") as url:
        command = [sys.executable, "-c", CLI, "--base-url", url, "batch", str(tmp_path / "in")]
        command += ["--face", str(tmp_path / "in" / "face.png"), "-o", str(outputs), "-j", "4"]
        env = {
            **os.environ,
            "MIOCREATE_CLIENT_ID": "emulator-client-id",
            "MIOCREATE_CLIENT_SECRET": "emulator-client-secret",
        }
        run_killed(command, outputs / DEFAULT_NAME, rng, kills=5, most=1.6, env=env)
        final = subprocess.run(
            [*command, "--json"], capture_output=True, text=True, timeout=120, env=env
        )
        print(explained(final))
        assert final.stdout, explained(final)
        report = json.loads(final.stdout)
        assert final.stderr.startswith("resuming: "), explained(final)
        statuses = Counter(job["status"] for job in report["jobs"])
        assert set(statuses) <= {"succeeded", "uncertain"}, report
        uncertain = {
            Path(job["image"]).stem for job in report["jobs"] if job["status"] == "uncertain"
        }
        judge(url, photos, outputs, uncertain, kills=5)
        if uncertain:
            again = subprocess.run(
                [*command, "--json", "--resubmit-uncertain"],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
            assert again.returncode == 0, explained(again)
            assert "may pay twice" in again.stderr
            judge(url, photos, outputs, uncertain, kills=5, resubmitted=True)
        # Once more: everything was downloaded, not one request.
        before = ledger(url)["requests_total"]
        last = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert last.returncode == 0, explained(last)
        assert f"resuming: {PHOTOS} done, 0 in flight, 0 uncertain, 0 to do" in last.stderr
        assert ledger(url)["requests_total"] == before
    assert not [p for p in outputs.iterdir() if p.name.endswith(".part")]
