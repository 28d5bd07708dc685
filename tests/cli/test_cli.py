"""The ``miocreate`` command, run as users run it (a subprocess) and through ``main([...])``,
against one emulator served from a thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from miocreate_async._cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from miocreate_async._cli._emulator import emulator_arguments
from miocreate_async.emulator import (
    Emulator,
    write_sample_face,
    write_sample_photo,
    write_sample_video,
)

RUN_CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def served() -> Iterator[Emulator]:
    with Emulator(latency=0.05, seed=3).run_in_thread() as emulator:
        yield emulator


@pytest.fixture
def env(served: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The emulator's settings in the environment, the working directory a fresh folder."""
    settings = {
        "MIOCREATE_BASE_URL": served.url,
        "MIOCREATE_CLIENT_ID": served.client_id,
        "MIOCREATE_CLIENT_SECRET": served.client_secret,
    }
    monkeypatch.delenv("MIOCREATE_TOKEN", raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return {**os.environ, **settings}


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_sample_photo(tmp_path / "photo.jpg", seed=5)


@pytest.fixture
def face(tmp_path: Path) -> Path:
    return write_sample_face(tmp_path / "face.png", seed=6)


def run(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as the console script runs it."""
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def json_out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def assert_image(path: Path) -> None:
    with Image.open(path) as image:
        image.verify()


def error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("miocreate: error: "), stderr
    return lines[0]


# --- batch -------------------------------------------------------------------------------------


def test_batch_of_a_folder_of_20(env: dict[str, str], tmp_path: Path, face: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(19):
        write_sample_photo(folder / f"p{index + 1}.jpg", seed=index)
    write_sample_video(folder / "clip.mp4", duration=1.0)
    (folder / "notes.txt").write_text("not media: skipped")

    done = run(env, "batch", folder, "--face", face, "-o", tmp_path / "out", "-j", "10")

    assert done.returncode == EXIT_OK, done.stderr
    outputs = sorted(p for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert len(outputs) == 20
    assert {path.name for path in outputs} >= {"p1-swapped.jpg", "p19-swapped.jpg"}
    assert any(path.suffix == ".mp4" for path in outputs)
    for path in outputs:
        if path.suffix == ".jpg":
            assert_image(path)
    assert "20 of 20 succeeded, 0 failed" in done.stdout
    assert "p19.jpg" in done.stdout  # the summary table
    assert "tasks" in done.stderr  # the progress bars


def test_batch_json_reports_each_job_and_fails_if_one_did(
    env: dict[str, str], tmp_path: Path, face: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(3):
        write_sample_photo(folder / f"p{index}.jpg", seed=index)
    (folder / "broken.jpg").write_text("a text file named like a photo")

    status = main(["--json", "batch", str(folder), "--face", str(face), "-o", "out"])

    report = json_out(capsys)
    assert status == EXIT_FAILED
    assert (report["total"], report["succeeded"], report["failed"]) == (4, 3, 1)
    (broken,) = [job for job in report["jobs"] if job["status"] == "failed"]
    assert broken["image"].endswith("broken.jpg")
    assert broken["error"]["type"] == "UnsupportedFormatError"
    assert broken["task_id"] is None
    for job in report["jobs"]:
        if job["status"] == "succeeded":
            assert_image(Path(job["path"]))
            assert isinstance(job["task_id"], int)


def test_batch_of_a_csv(
    env: dict[str, str], tmp_path: Path, photo: Path, face: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        "image,face,hd\n"
        "photo.jpg,face.png,1\n"
        "photo.jpg,face.png\n"  # the same image twice: two outputs, not one overwritten
        "missing.jpg,face.png,no\n"
    )
    status = main(["--json", "batch", str(jobs), "-o", "out"])
    report = json_out(capsys)
    assert status == EXIT_FAILED
    assert [job["status"] for job in report["jobs"]] == ["succeeded", "succeeded", "failed"]
    assert [job["hd"] for job in report["jobs"]] == [True, False, False]
    assert report["jobs"][2]["error"]["type"] == "SourceNotFoundError"
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert names == ["photo-swapped-2.jpg", "photo-swapped.jpg"]


def test_batch_csv_errors_are_one_line(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("photo.jpg,face.png,maybe\n")
    assert main(["batch", str(jobs)]) == EXIT_USAGE
    assert "jobs.csv, line 1: hd must be" in error_line(capsys.readouterr().err)
    assert main(["batch", str(tmp_path)]) == EXIT_USAGE
    assert "a folder needs --face" in error_line(capsys.readouterr().err)
    assert main(["batch", str(tmp_path), "--face", "nobody.png"]) == EXIT_USAGE
    assert "no such file: nobody.png" in error_line(capsys.readouterr().err)


def test_batch_never_overwrites_without_asking(
    env: dict[str, str], tmp_path: Path, photo: Path, face: Path, served: Emulator
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    write_sample_photo(folder / "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a-swapped.jpg").write_bytes(b"keep me")
    spent = served.ledger["credits_spent"]

    assert main(["batch", str(folder), "--face", str(face), "-o", str(out)]) == EXIT_USAGE
    assert (out / "a-swapped.jpg").read_bytes() == b"keep me"
    assert served.ledger["credits_spent"] == spent  # refused before anything was spent

    assert main(["batch", str(folder), "--face", str(face), "-o", str(out), "--overwrite"]) == 0
    assert_image(out / "a-swapped.jpg")


# --- single jobs -------------------------------------------------------------------------------


def test_swap_saves_the_image_and_prints_json(
    env: dict[str, str], photo: Path, face: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["swap", str(photo), "--face", str(face), "--json", "--hd"]) == EXIT_OK
    report = json_out(capsys)
    saved = Path(report["path"])
    assert saved.name == "photo-swapped.jpg"
    assert_image(saved)
    assert report["result"]["width"] == 640
    assert "downloader" not in report["result"]

    assert main(["--json", "task", str(report["task_id"])]) == EXIT_OK
    task = json_out(capsys)
    assert (task["status"], task["kind"]) == ("succeeded", None)
    assert task["result"]["merge_key"] == report["result"]["merge_key"]


def test_swap_never_overwrites_without_asking(
    env: dict[str, str],
    tmp_path: Path,
    photo: Path,
    face: Path,
    served: Emulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "mine.jpg"
    out.write_bytes(b"keep me")
    requests = served.ledger["requests_total"]

    assert main(["swap", str(photo), "--face", str(face), "-o", str(out)]) == EXIT_USAGE
    assert "pass --overwrite" in error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"keep me"
    assert served.ledger["requests_total"] == requests

    assert main(["swap", str(photo), "--face", str(face), "-o", str(out), "--overwrite"]) == 0
    assert_image(out)


def test_swap_video_faces_and_swap_faces(
    env: dict[str, str],
    tmp_path: Path,
    photo: Path,
    face: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clip = write_sample_video(tmp_path / "clip.mp4", duration=1.0)
    assert main(["--json", "swap-video", str(clip), "--face", str(face)]) == EXIT_OK
    assert Path(json_out(capsys)["path"]).name == "clip-swapped.mp4"

    assert main(["--json", "faces", str(photo)]) == EXIT_OK
    detection = json_out(capsys)
    assert len(detection["faces"]) >= 1
    landmarks = {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    assert set(detection["faces"][0]["kps"]) == landmarks

    args = ["--json", "swap-faces", str(photo), "--face", f"1={face}", "-o", "multi.jpg"]
    assert main([*args, "--detection", str(detection["task_id"])]) == EXIT_OK
    assert_image(Path(json_out(capsys)["path"]))
    by_key = f"{detection['faces'][0]['avatar_part_key']}={face}"
    by_key_args = ["swap-faces", str(photo), "--face", by_key, "-o", "by-key.jpg"]
    assert main([*by_key_args, "--detection", str(detection["task_id"])]) == EXIT_OK
    assert_image(tmp_path / "by-key.jpg")

    assert main(["swap-faces", str(photo), "--face", f"9={face}"]) == EXIT_USAGE
    assert "no face number 9" in error_line(capsys.readouterr().err)


# --- errors ------------------------------------------------------------------------------------


def test_a_bad_input_prints_one_line_and_exits_non_zero(
    env: dict[str, str], tmp_path: Path, face: Path
) -> None:
    done = run(env, "swap", tmp_path / "nope.jpg", "--face", face)
    assert done.returncode == EXIT_USAGE
    assert error_line(done.stderr) == f"miocreate: error: no such file: {tmp_path / 'nope.jpg'}"
    assert done.stdout == ""

    text = tmp_path / "fake.png"
    text.write_text("not an image")
    done = run(env, "swap", text, "--face", face)
    assert done.returncode == EXIT_USAGE
    assert "fake.png" in error_line(done.stderr)
    assert "Traceback" not in done.stderr


def test_service_failures_exit_1_and_debug_shows_the_traceback(
    env: dict[str, str], photo: Path, face: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["swap", str(photo), "--face", str(face), "--token", "wrong"]) == EXIT_FAILED
    assert "code=401" in error_line(capsys.readouterr().err)

    assert main(["--debug", "swap", str(photo), "--face", str(face), "--token", "no"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("miocreate: error: ")


def test_wrong_kind_and_missing_credentials(
    env: dict[str, str],
    tmp_path: Path,
    photo: Path,
    face: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clip = write_sample_video(tmp_path / "clip.mp4", duration=1.0)
    assert main(["swap", str(clip), "--face", str(face)]) == EXIT_USAGE
    assert "use `miocreate swap-video`" in error_line(capsys.readouterr().err)
    assert main(["task", "abc"]) == EXIT_USAGE
    assert "not a task id" in error_line(capsys.readouterr().err)

    monkeypatch.delenv("MIOCREATE_CLIENT_SECRET")
    assert main(["swap", str(photo), "--face", str(face)]) == EXIT_USAGE
    assert "no credentials" in error_line(capsys.readouterr().err)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["swap", "photo.jpg"]) == EXIT_USAGE
    assert "--face" in capsys.readouterr().err
    assert main([]) == EXIT_USAGE
    assert main(["batch", "x", "--concurrency", "0"]) == EXIT_USAGE
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    for command in ("swap", "swap-video", "faces", "swap-faces", "task", "batch", "emulator"):
        assert command in out


def test_without_the_cli_extra_it_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # rich cannot be imported
    assert main(["swap", "photo.jpg", "--face", "face.png"]) == EXIT_FAILED
    assert "pip install 'miocreate-async[cli]'" in error_line(capsys.readouterr().err)


# --- demo and emulator -------------------------------------------------------------------------


def test_demo_leaves_a_real_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == EXIT_OK
    out = capsys.readouterr().out
    swapped = next(line for line in out.splitlines() if line.startswith("Swapped:"))
    path = tmp_path / swapped.split()[1]
    assert_image(path)

    first = path.read_bytes()
    # Run again: the earlier result is kept, the new one saved beside it.
    monkeypatch.setitem(sys.modules, "rich", None)  # the demo needs no `cli` extra
    assert main(["demo", "--json"]) == EXIT_OK
    second = Path(json_out(capsys)["path"])
    assert second.name == path.stem + "-2" + path.suffix
    assert_image(second)
    assert path.read_bytes() == first
    assert main(["demo", "--overwrite", "--json"]) == EXIT_OK
    assert Path(json_out(capsys)["path"]) == path


def test_emulator_takes_the_emulators_own_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "--latency" in out
    assert "--fail-rate" in out
    assert emulator_arguments(["--json", "emulator", "--port", "0"]) == ["--port", "0"]
    assert emulator_arguments(["--base-url", "emulator", "swap"]) is None
    assert emulator_arguments(["swap", "emulator"]) is None


def test_emulator_serves(env: dict[str, str]) -> None:
    """``miocreate emulator --port 0`` prints its URL first, as ``python -m ...emulator`` does."""
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "emulator", "--port", "0", "--latency", "0.05"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("MioCreate emulator serving at http://127.0.0.1:")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
