"""The command line, started as a process, as a developer or a benchmark starts it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

pytestmark = pytest.mark.processes


def test_command_line_serves_and_answers_401() -> None:
    command = [
        sys.executable,
        "-m",
        "miocreate_async.emulator",
        "--port",
        "0",
        "--seed",
        "1",
        "--latency",
        "image=0.1,video=1-2",
        "--client-secret",
        "s3cret",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            url = first.split()[-1]
            assert url.startswith("http://127.0.0.1:")
            rest = [process.stdout.readline() for _ in range(2)]
            assert any("s3cret" in line for line in rest)
            request = urllib.request.Request(
                url + "/v1/source/upload-url",
                data=b'{"file_name": "a.jpg"}',
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as reply:
                assert reply.status == 200
                assert json.load(reply)["code"] == 401
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0


def test_command_line_rejects_bad_settings() -> None:
    command = [sys.executable, "-m", "miocreate_async.emulator", "--fail-rate", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "fail_rate" in result.stderr


_MIOCREATE = "import sys; from miocreate_async._cli import main; sys.exit(main())"


def test_help_names_the_command_and_documents_every_flag() -> None:
    import attrs

    from miocreate_async.emulator import EmulatorSettings
    from miocreate_async.emulator.__main__ import parser

    for command, name in (
        ([sys.executable, "-m", "miocreate_async.emulator"], "python -m miocreate_async.emulator"),
        ([sys.executable, "-c", _MIOCREATE, "emulator"], "miocreate emulator"),
    ):
        result = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: {name} ")
        for flag in ("--vision", "--access-log", "--bandwidth-per-connection", "--auth-scheme"):
            assert flag in result.stdout
    actions = [action for action in parser()._actions if action.option_strings != ["-h", "--help"]]
    assert all(action.help for action in actions)
    flags = {option for action in actions for option in action.option_strings}
    settings = {
        "--" + field.name.replace("_", "-")
        for field in attrs.fields(EmulatorSettings)
        if field.name not in ("paths", "shutdown_timeout")
    }
    assert settings <= flags


def test_access_log_on_stderr() -> None:
    command = [sys.executable, "-m", "miocreate_async.emulator", "--port", "0", "--access-log"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split()[-1]
            request = urllib.request.Request(
                url + "/v1/source/upload-url", data=b"{}", method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as reply:
                assert json.load(reply)["code"] == 401
        finally:
            process.terminate()
            _, errors = process.communicate(timeout=10)
    assert "POST /v1/source/upload-url 200 code=401" in errors
