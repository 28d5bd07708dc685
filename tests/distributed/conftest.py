"""A real Redis for the distributed tests: Debian's redis-server on a free port, in a temporary
directory, with the settings a production journal needs; stopped afterwards.

Without redis-server (or without the distributed extra) these tests skip, saying how to enable
them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
ENABLE = (
    "install redis-server (Debian/Ubuntu: `sudo apt-get install redis-server`) and the "
    "distributed extra (`pip install -e '.[dev]'`) to run the distributed tests"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = None
    if REDIS_SERVER is None:
        missing = "redis-server not found"
    else:
        try:
            import taskiq_redis  # noqa: F401
        except ImportError:
            missing = "the distributed extra is not installed"
    if missing is None:
        return
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=f"{missing}: {ENABLE}"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A fresh redis-server: every write fsynced before it is answered, nothing ever evicted."""
    assert REDIS_SERVER is not None
    data = tmp_path / "redis"
    data.mkdir()
    for _ in range(5):  # a free port can be taken between the check and the start
        port = _free_port()
        process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(data),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--maxmemory-policy", "noeviction",
                "--save", "",
                "--protected-mode", "no",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline and not _ping(port):
            time.sleep(0.02)
        if process.poll() is None and _ping(port):
            break
        process.kill()
        process.wait()
    else:
        pytest.fail("redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
