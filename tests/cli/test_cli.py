"""The ``miocreate`` command, run as users run it (the console script, in a subprocess) and
through ``main([...])``, against one emulator served from a thread."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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

pytestmark = pytest.mark.processes

MIOCREATE = Path(sys.executable).with_name("miocreate")
RUN_CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"


@pytest.fixture
def env(served: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The emulator's settings in the environment, the working directory a fresh folder; a
    subprocess also gets no inherited log level, terminal or colour switch, and 100 columns."""
    settings = {
        "MIOCREATE_BASE_URL": served.url,
        "MIOCREATE_CLIENT_ID": served.client_id,
        "MIOCREATE_CLIENT_SECRET": served.client_secret,
    }
    for name in ("MIOCREATE_TOKEN", "MIOCREATE_LOG", "TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return {**os.environ, **settings, "COLUMNS": "100"}


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_sample_photo(tmp_path / "photo.jpg", seed=5)


@pytest.fixture
def face(tmp_path: Path) -> Path:
    return write_sample_face(tmp_path / "face.png", seed=6)


def run(
    env: dict[str, str], *args: str | Path, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """The installed console script in its own process, as a user runs it."""
    assert MIOCREATE.exists(), "the console script is installed with the package"
    return subprocess.run(
        [str(MIOCREATE), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
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


def _uploads(served: Emulator) -> int:
    return len(served.ledger["uploads"])


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


def test_batch_against_a_dead_service_says_what_to_do_and_ends(
    env: dict[str, str], tmp_path: Path, face: Path
) -> None:
    folder = folder_of(tmp_path, 12)
    env = {**env, "MIOCREATE_BASE_URL": dead_url()}
    # Before the circuit breaker this ran (jobs / concurrency) x --timeout: 60 s here. Nothing
    # listening where the service never answered is not retried: no retry can fix it.
    done = run(env, "batch", folder, "--face", face, "-j", "4", "--timeout", "20", timeout=50)
    assert done.returncode == EXIT_FAILED
    assert "retrying" not in done.stderr.lower()
    assert "unreachable" in done.stdout.lower()
    assert "nothing is listening" in done.stdout.lower()

    # On a terminal likewise, and no log line of its own.
    tty = {**env, "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
    done = run(tty, "batch", folder, "--face", face, "-o", "out1", "-j", "4", timeout=50)
    assert done.returncode == EXIT_FAILED
    assert "nothing is listening" in done.stdout.lower()
    assert "miocreate: " not in done.stderr

    done = run(env, "--json", "batch", folder, "--face", face, "-o", "out2", "-j", "4", timeout=50)
    assert done.returncode == EXIT_FAILED
    jobs = json.loads(done.stdout)["jobs"]
    assert len(jobs) == 12
    assert {job["error"]["type"] for job in jobs} == {"ServiceUnreachableError"}


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


# --- where results are saved: a folder, the real extension, refusals before paying ---------------


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


def test_dangling_symlink_output_is_refused_before_upload(
    env: dict[str, str], served: Emulator, tmp_path: Path, photo: Path, face: Path
) -> None:
    out = tmp_path / "out.jpg"
    out.symlink_to(tmp_path / "nowhere" / "target.jpg")
    before = _uploads(served)
    done = run(env, "swap", photo, "--face", face, "-o", out)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert _uploads(served) == before
    assert out.is_symlink()
    assert not (tmp_path / "nowhere").exists()


def test_dangling_symlink_default_output_is_refused_before_upload(
    env: dict[str, str], served: Emulator, tmp_path: Path, photo: Path, face: Path
) -> None:
    (tmp_path / "photo-swapped.jpg").symlink_to(tmp_path / "gone.jpg")
    before = _uploads(served)
    done = run(env, "swap", photo, "--face", face)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert _uploads(served) == before
    assert not (tmp_path / "gone.jpg").exists()


def test_output_name_too_long_is_refused_before_upload(
    env: dict[str, str], served: Emulator, tmp_path: Path, photo: Path, face: Path
) -> None:
    before = _uploads(served)
    done = run(env, "swap", photo, "--face", face, "-o", "n" * 300 + ".jpg")
    assert done.returncode == EXIT_USAGE, done.stderr
    assert _uploads(served) == before


def test_long_output_name_whose_temporary_file_would_not_fit(
    env: dict[str, str], served: Emulator, tmp_path: Path, photo: Path, face: Path
) -> None:
    name = "m" * 250 + ".jpg"
    done = run(env, "swap", photo, "--face", face, "-o", name)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / name).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_paid_result_that_cannot_be_saved_says_how_to_collect_it(
    env: dict[str, str], served: Emulator, tmp_path: Path, photo: Path, face: Path
) -> None:
    tasks_before = {task["id"] for task in served.ledger["tasks"]}
    served.scenario("storage_get", fault="http", http_status=403, count=50)
    try:
        done = run(env, "swap", photo, "--face", face, "-o", tmp_path / "r.jpg")
        created = [task["id"] for task in served.ledger["tasks"] if task["id"] not in tasks_before]
    finally:
        served.reset()
    assert done.returncode != 0
    assert len(created) == 1
    assert "miocreate task" in done.stderr, done.stderr
    assert str(created[0]) in done.stderr


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
