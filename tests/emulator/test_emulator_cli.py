"""The command line, started as a process, as a developer or a benchmark starts it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request


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
