"""Issue 14, CLI side, through the real console script against the emulator: a batch against a
service that is down ends (item 1), ``-o out/`` is a folder (2), ``--json`` on every path (3),
``batch`` of one image is a usage error and semicolon CSVs are read (4), ``--verbose`` (8), and
output that fits the job (12)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from miocreate_async.emulator import (
    Emulator,
    write_sample_face,
    write_sample_photo,
    write_sample_video,
)

MIOCREATE = Path(sys.executable).with_name("miocreate")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@pytest.fixture(scope="module")
def served() -> Iterator[Emulator]:
    with Emulator(latency=0.05, seed=14).run_in_thread() as emulator:
        yield emulator


@pytest.fixture
def env(served: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    settings = {
        **os.environ,
        "MIOCREATE_BASE_URL": served.url,
        "MIOCREATE_CLIENT_ID": served.client_id,
        "MIOCREATE_CLIENT_SECRET": served.client_secret,
        "COLUMNS": "100",
    }
    for name in ("MIOCREATE_TOKEN", "MIOCREATE_LOG", "TTY_COMPATIBLE", "FORCE_COLOR"):
        settings.pop(name, None)
    return settings


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_sample_photo(tmp_path / "photo.jpg", seed=5)


@pytest.fixture
def face(tmp_path: Path) -> Path:
    return write_sample_face(tmp_path / "face.png", seed=6)


def run(
    env: dict[str, str], *args: str | Path, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    assert MIOCREATE.exists(), "the console script is installed with the package"
    return subprocess.run(
        [str(MIOCREATE), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_error(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    document = json.loads(done.stdout)
    error: dict[str, Any] = document["error"]
    assert set(error) >= {"type", "message", "code", "task_id"}
    assert error["type"]
    assert error["message"]
    return error


def dead_url() -> str:
    """A local port nobody listens on: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def folder_of(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(count):
        write_sample_photo(folder / f"p{index}.jpg", seed=index)
    return folder


# --- item 1: a batch against a service that is down -------------------------------------------


def test_batch_against_a_dead_service_announces_retries_and_ends(
    env: dict[str, str], tmp_path: Path, face: Path
) -> None:
    folder = folder_of(tmp_path, 12)
    env = {**env, "MIOCREATE_BASE_URL": dead_url()}
    # Before the circuit breaker this ran (jobs / concurrency) x --timeout: 60 s here.
    done = run(env, "batch", folder, "--face", face, "-j", "4", "--timeout", "20", timeout=50)
    assert done.returncode == EXIT_FAILED
    assert "retrying" in done.stderr.lower()  # the line under the bars
    assert "unreachable" in done.stdout.lower()

    # On a terminal, the retries are a line under the bars, not lines scrolling above them.
    tty = {**env, "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
    done = run(tty, "batch", folder, "--face", face, "-o", "out1", "-j", "4", timeout=50)
    assert done.returncode == EXIT_FAILED
    assert "retrying" in done.stderr.lower()
    assert "miocreate: " not in done.stderr  # no log line of its own

    done = run(env, "--json", "batch", folder, "--face", face, "-o", "out2", "-j", "4", timeout=50)
    assert done.returncode == EXIT_FAILED
    jobs = json.loads(done.stdout)["jobs"]
    assert len(jobs) == 12
    assert {job["error"]["type"] for job in jobs} == {"ServiceUnreachableError"}


# --- item 2: -o out/ is a folder --------------------------------------------------------------


def test_output_with_a_trailing_slash_is_a_folder(
    env: dict[str, str], tmp_path: Path, photo: Path, face: Path
) -> None:
    done = run(env, "swap", photo, "--face", face, "-o", "out/")
    assert done.returncode == EXIT_OK, done.stderr
    assert (tmp_path / "out").is_dir()
    assert (tmp_path / "out" / "photo-swapped.jpg").is_file()


def test_output_with_another_extension_keeps_the_real_one(
    env: dict[str, str], tmp_path: Path, photo: Path, face: Path
) -> None:
    done = run(env, "swap", photo, "--face", face, "-o", "x.png")
    assert done.returncode == EXIT_OK, done.stderr
    assert (tmp_path / "x.jpg").is_file()
    assert not (tmp_path / "x.png").exists()
    assert "x.jpg" in done.stdout


def test_output_in_missing_folders_is_refused_before_spending(
    env: dict[str, str], tmp_path: Path, photo: Path, face: Path, served: Emulator
) -> None:
    tasks = len(served.ledger["tasks"])
    done = run(env, "swap", photo, "--face", face, "-o", tmp_path / "no" / "such" / "x.jpg")
    assert done.returncode == EXIT_USAGE
    assert "does not exist" in done.stderr
    assert not (tmp_path / "no").exists()
    assert len(served.ledger["tasks"]) == tasks


# --- item 3: --json is JSON on every path -----------------------------------------------------


def test_json_refusals_before_any_request(
    env: dict[str, str], tmp_path: Path, photo: Path, face: Path
) -> None:
    (tmp_path / "taken.jpg").write_bytes(b"x")
    done = run(env, "--json", "swap", photo, "--face", face, "-o", "taken.jpg")
    assert done.returncode == EXIT_USAGE
    assert "exists" in json_error(done)["message"]

    text = tmp_path / "text.jpg"
    text.write_text("a text file named like a photo")
    done = run(env, "swap", text, "--face", face, "--json")
    assert done.returncode == EXIT_USAGE
    error = json_error(done)
    assert error["type"] == "UnsupportedFormatError"
    assert error["code"] == 703

    no_credentials = {
        k: v for k, v in env.items() if k not in ("MIOCREATE_CLIENT_ID", "MIOCREATE_CLIENT_SECRET")
    }
    done = run(no_credentials, "--json", "swap", photo, "--face", face)
    assert done.returncode == EXIT_USAGE
    assert "credentials" in json_error(done)["message"]

    done = run(env, "--json", "swap", photo)  # --face is missing: argparse's refusal
    assert done.returncode == EXIT_USAGE
    assert "--face" in json_error(done)["message"]


def test_json_task_failure(env: dict[str, str], served: Emulator, photo: Path, face: Path) -> None:
    served.scenario("image_swap", task_fail={"code": 602, "message": "No face detected"})
    done = run(env, "--json", "swap", photo, "--face", face)
    assert done.returncode == EXIT_FAILED
    error = json_error(done)
    assert error["type"] == "NoFaceDetectedError"
    assert error["code"] == 602
    assert isinstance(error["task_id"], int)
    assert done.stderr == ""


# --- item 4: batch takes a folder or a CSV ----------------------------------------------------


def test_batch_of_one_image_is_a_usage_error(
    env: dict[str, str], photo: Path, face: Path, served: Emulator
) -> None:
    requests = served.ledger["requests_total"]
    done = run(env, "batch", photo, "--face", face)
    assert done.returncode == EXIT_USAGE
    assert "folder" in done.stderr
    assert "CSV" in done.stderr
    assert "miocreate swap" in done.stderr  # what to use for one image
    assert served.ledger["requests_total"] == requests
    # A file that is no CSV (binary), and a video, likewise.
    blob = photo.with_name("jobs.bin")
    blob.write_bytes(b"\x00\x01binary")
    done = run(env, "batch", blob, "--face", face)
    assert done.returncode == EXIT_USAGE
    assert "not a CSV" in done.stderr
    video = write_sample_video(photo.with_name("clip.mp4"), duration=1.0)
    done = run(env, "--json", "batch", video, "--face", face)
    assert done.returncode == EXIT_USAGE
    assert "miocreate swap-video" in json_error(done)["message"]
    assert served.ledger["requests_total"] == requests


def test_batch_reads_a_semicolon_csv(env: dict[str, str], tmp_path: Path, face: Path) -> None:
    folder_of(tmp_path, 2)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("image;face;hd\nphotos/p0.jpg;face.png;1\nphotos/p1.jpg;face.png;0\n")
    done = run(env, "batch", jobs, "-o", "out")
    assert done.returncode == EXIT_OK, done.stderr + done.stdout
    assert sorted(path.name for path in (tmp_path / "out").glob("[!.]*")) == [
        "p0-swapped.jpg",
        "p1-swapped.jpg",
    ]
    # A semicolon CSV with a column too many is refused in its own terms, before any request.
    jobs.write_text("photos/p0.jpg;face.png;1;extra\n")
    done = run(env, "batch", jobs, "-o", "out2")
    assert done.returncode == EXIT_USAGE
    assert "expected image;face[;hd], got 4 columns" in done.stderr


# --- item 8 and 12: --verbose, and output that fits the job ------------------------------------


def test_swap_prints_no_signed_url_unless_verbose(
    env: dict[str, str], photo: Path, face: Path, served: Emulator
) -> None:
    done = run(env, "swap", photo, "--face", face)
    assert done.returncode == EXIT_OK, done.stderr
    assert "Saved photo-swapped.jpg" in done.stdout
    assert "X-Amz" not in done.stdout
    assert "http" not in done.stdout

    done = run(env, "swap", photo, "--face", face, "--overwrite", "--verbose")
    assert done.returncode == EXIT_OK, done.stderr
    assert served.url in done.stdout  # the result's URL
    assert "/v1/source/upload-url" in done.stderr  # the requests, logged
    assert served.client_secret not in done.stderr + done.stdout


def test_faces_table_shows_whole_keys(
    env: dict[str, str], tmp_path: Path, served: Emulator
) -> None:
    group = write_sample_photo(tmp_path / "group.jpg", faces=3, seed=2)
    served.scenario("face_detection", faces=3)
    table = run({**env, "COLUMNS": "80"}, "faces", group)
    assert table.returncode == EXIT_OK, table.stderr
    task_id = table.stdout.split("detection task ")[1].split()[0]
    # The same detection's faces, as JSON: every key appears whole in the table's output.
    done = run(env, "--json", "task", task_id)
    assert done.returncode == EXIT_OK, done.stderr
    keys = [face["avatar_part_key"] for face in json.loads(done.stdout)["result"]]
    assert len(keys) == 3
    for key in keys:
        assert key in table.stdout


def test_task_wait_downloads_like_swap_and_its_spinner_has_no_bytes(
    env: dict[str, str], tmp_path: Path, photo: Path, face: Path
) -> None:
    created = run(env, "--json", "swap", photo, "--face", face, "-o", "first.jpg")
    assert created.returncode == EXIT_OK, created.stderr
    task_id = json.loads(created.stdout)["task_id"]

    terminal = {**env, "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
    done = run(terminal, "task", str(task_id), "--wait")
    assert done.returncode == EXIT_OK, done.stderr
    saved = tmp_path / f"task-{task_id}.jpg"
    assert saved.is_file()
    assert f"Saved {saved.name}" in done.stdout
    spinner = [line for line in done.stderr.splitlines() if f"task {task_id}" in line]
    assert spinner
    assert not [line for line in spinner if "bytes" in line or "/s" in line]
    # Again: the file exists, and is never replaced without --overwrite.
    again = run(env, "task", str(task_id), "--wait")
    assert again.returncode == EXIT_USAGE
    assert "exists" in again.stderr


def test_batch_bars_show_eta_and_in_flight_and_quiet_shows_failures_only(
    env: dict[str, str], tmp_path: Path, face: Path
) -> None:
    folder = folder_of(tmp_path, 3)
    (folder / "broken.jpg").write_text("a text file named like a photo")

    done = run({**env, "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}, "batch", folder, "--face", face)
    assert done.returncode == EXIT_FAILED
    assert "in flight" in done.stderr
    assert "ETA" in done.stderr

    done = run(env, "batch", folder, "--face", face, "-o", "quiet", "--quiet")
    assert done.returncode == EXIT_FAILED
    assert "broken.jpg" in done.stdout
    assert "p0.jpg" not in done.stdout
    assert "3 of 4 succeeded" in done.stdout
    assert done.stderr == ""  # no bars
