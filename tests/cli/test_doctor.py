"""``miocreate doctor`` against the emulator: each check, human and ``--json``, what a wrong
URL or key pair says, ``--record`` redacted, and the emulator's conformance with a recording
(the recording made here, and a user's own with ``MIOCREATE_RECORDING=DIR``)."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from miocreate_async._cli._main import main
from miocreate_async.emulator import Emulator, replay_recording

CHECKS = ["proxy", "base_url", "credentials", "clock", "task_detail", "upload_url", "upload"]


@pytest.fixture
def served() -> Iterator[Emulator]:
    with Emulator(latency=0.05, seed=2).run_in_thread() as emulator:
        yield emulator


@pytest.fixture
def account(served: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    for name in ("MIOCREATE_TOKEN", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIOCREATE_BASE_URL", served.url)
    monkeypatch.setenv("MIOCREATE_CLIENT_ID", served.client_id)
    monkeypatch.setenv("MIOCREATE_CLIENT_SECRET", served.client_secret)
    return served


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["doctor", *args])
    return status, capsys.readouterr().out


def test_every_check_passes_against_the_emulator_and_spends_nothing(
    account: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = doctor(capsys, "--json")
    assert status == 0
    report = json.loads(out)
    assert report["ok"] is True
    verdicts = {check["name"]: check["status"] for check in report["checks"]}
    assert {name: verdicts[name] for name in CHECKS} == dict.fromkeys(CHECKS, "ok")
    assert verdicts["access_url"] == "ok"
    assert verdicts["creations"] == "skip"
    assert all(check["proves"] for check in report["checks"])
    assert account.ledger["credits_spent"] == 0
    assert account.ledger["tasks"] == []
    status, out = doctor(capsys)
    assert status == 0
    for name in CHECKS:
        assert re.search(rf"ok\s+{name}\b", out), out


def test_a_wrong_key_pair_fails_the_credentials(
    account: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MIOCREATE_CLIENT_SECRET", "not-the-secret")
    status, out = doctor(capsys, "--json")
    assert status == 1
    checks = {check["name"]: check for check in json.loads(out)["checks"]}
    assert checks["base_url"]["status"] == "ok"
    assert checks["credentials"]["status"] == "fail"
    assert "401" in checks["credentials"]["detail"]
    assert "not-the-secret" not in out


def test_a_base_url_with_nothing_listening_says_what_to_change(
    account: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status, out = doctor(capsys, "--json", "--base-url", f"http://127.0.0.1:{port}")
    assert status == 1
    checks = {check["name"]: check for check in json.loads(out)["checks"]}
    assert checks["base_url"]["status"] == "fail"
    assert "nothing is listening" in checks["base_url"]["detail"]
    assert "credentials" not in checks  # not reached: not judged


def test_the_recording_is_redacted_and_the_emulator_conforms_to_it(
    account: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recording"
    status, _ = doctor(capsys, "--record", str(folder))
    assert status == 0
    files = sorted(folder.glob("*.json"))
    assert [path.name.split("-", 1)[1] for path in files] == [
        "credentials.json",
        "task_detail.json",
        "upload_url.json",
        "upload.json",
        "access_url.json",
    ]
    text = "".join(path.read_text() for path in files)
    assert account.client_secret not in text
    assert account.client_id not in text
    assert not re.search(r"X-Amz-Signature=[0-9a-f]{16}", text, re.IGNORECASE)
    token = json.loads(files[0].read_text())["response"]["json"]["data"]["access_token"]
    assert token == "[redacted]"
    # Another emulator answers the recorded requests in the same shapes and codes.
    with Emulator(latency=0.05, seed=9).run_in_thread() as other:
        found = anyio.run(replay_recording, folder, other.url, other.client_id, other.client_secret)
    assert found == []


def test_the_conformance_check_reports_a_difference(
    account: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recording"
    doctor(capsys, "--record", str(folder))
    # As if the service had sent the upload key as a number, and another code for a task.
    path = next(folder.glob("*-upload_url.json"))
    exchange = json.loads(path.read_text())
    exchange["response"]["shape"]["data"]["key"] = "int"
    path.write_text(json.dumps(exchange))
    path = next(folder.glob("*-task_detail.json"))
    exchange = json.loads(path.read_text())
    exchange["response"]["json"]["code"] = 702
    path.write_text(json.dumps(exchange))
    found = anyio.run(
        replay_recording, folder, account.url, account.client_id, account.client_secret
    )
    assert "upload_url: data.key: str where int was expected" in found
    assert any(
        line.startswith("task_detail: code 400 where the service answered 702") for line in found
    )


@pytest.mark.skipif(
    not os.environ.get("MIOCREATE_RECORDING"),
    reason="set MIOCREATE_RECORDING to a `miocreate doctor --record` folder of the real service",
)
def test_the_emulator_conforms_to_your_recording(served: Emulator) -> None:
    """Run with your own recording: ``MIOCREATE_RECORDING=DIR pytest tests/cli/test_doctor.py``."""
    folder = Path(os.environ["MIOCREATE_RECORDING"])
    found = anyio.run(replay_recording, folder, served.url, served.client_id, served.client_secret)
    assert found == [], "\n".join(found)
