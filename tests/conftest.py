"""Shared fixtures: a fast emulator in the test's own loop, a client bound to it, samples, and a
real Redis."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fake_service import FakeService

from miocreate_async import Config, MioCreate, PollSchedule
from miocreate_async._operations import DEFAULT_PATHS, Operation
from miocreate_async.emulator import (
    Emulator,
    write_sample_face,
    write_sample_photo,
    write_sample_video,
)

FAST_POLL = PollSchedule(first=0.02, multiplier=1.5, maximum=0.2)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    """Tasks end after 50 ms; faults and latencies replay with seed 1."""
    async with Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emulator") as emu:
        yield emu


@pytest.fixture(scope="session")
def served() -> Iterator[Emulator]:
    """One emulator per test process, in a thread of its own, for the tests that only add to
    its state and count what they added (the CLI's, run as processes); a test that needs a
    fresh one asks for ``emulator``, or defines its own ``served``."""
    with Emulator(latency=0.05, seed=3).run_in_thread() as emulator:
        yield emulator


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[MioCreate]:
    # Polls as fast as the emulator's 50 ms tasks end, so tests wait milliseconds, not seconds.
    client = emulator.client(config=Config(base_url=emulator.url, poll=FAST_POLL))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def sample_photo(tmp_path: Path) -> Path:
    return write_sample_photo(tmp_path / "photo.jpg")


@pytest.fixture
def sample_face(tmp_path: Path) -> Path:
    return write_sample_face(tmp_path / "face.png", seed=1)


@pytest.fixture
def sample_video(tmp_path: Path) -> Path:
    return write_sample_video(tmp_path / "clip.mp4", duration=2.5, size=64 * 1024)


@pytest.fixture
async def fake() -> AsyncIterator[FakeService]:
    """A scriptable fake of the service, for replies the emulator never gives."""
    async with FakeService() as service:
        yield service


class RawApi:
    """The emulator driven with plain aiohttp, independently of the client."""

    def __init__(self, emulator: Emulator, session: aiohttp.ClientSession) -> None:
        self.emulator = emulator
        self.session = session
        self._token: str | None = None

    def url(self, operation: Operation) -> str:
        return self.emulator.url + DEFAULT_PATHS[operation]

    async def token(self) -> str:
        if self._token is None:
            credentials = {
                "client_id": self.emulator.client_id,
                "client_secret": self.emulator.client_secret,
            }
            envelope = await self.call(Operation.TOKEN, credentials, auth=False)
            assert envelope["code"] == 200, envelope
            self._token = envelope["data"]["access_token"]
        return self._token

    async def call(self, operation: Operation, body: Any = None, *, auth: bool = True) -> Any:
        """The envelope of one API request (HTTP 200 whatever the code)."""
        headers = {"Authorization": f"Bearer {await self.token()}"} if auth else {}
        async with self.session.post(self.url(operation), json=body, headers=headers) as reply:
            assert reply.status == 200
            return await reply.json()

    async def data(self, operation: Operation, body: Any = None) -> Any:
        envelope = await self.call(operation, body)
        assert envelope["code"] == 200, envelope
        return envelope["data"]

    async def upload(self, path: Path, file_name: str | None = None) -> str:
        target = await self.data(Operation.UPLOAD_URL, {"file_name": file_name or path.name})
        async with self.session.put(target["upload_url"], data=path.read_bytes()) as reply:
            assert reply.status == 200, await reply.text()
        key: str = target["key"]
        return key

    async def create(self, operation: Operation, body: Any) -> int:
        task_id: int = (await self.data(operation, body))["task_id"]
        return task_id

    async def detail(self, task_id: int | str) -> Any:
        return await self.data(Operation.TASK_DETAIL, {"id": task_id})

    async def finish(self, task_id: int) -> Any:
        """The task's detail once done: the clock moves on instead of the test sleeping."""
        self.emulator.advance_clock(60)
        return await self.detail(task_id)


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[RawApi]:
    async with aiohttp.ClientSession() as session:
        yield RawApi(emulator, session)


# --- kinds of test, for selecting by marker ------------------------------------------------
# e2e: talks to a server (the emulator, Redis, a local fake) or starts processes; the rest are the
# pure tests (`pytest -m "not e2e"` runs them in seconds). processes: starts subprocesses (the
# CLI, workers, scripts killed with signals). docs: the site and its samples. typecheck: mypy or
# pyright. The server fixtures mark the tests that use them e2e, and so do the three other
# kinds and the folders of the emulator and distributed tests; a test that opens a socket or
# starts a process without its marker fails, naming it.

SERVER_FIXTURES = frozenset(
    {
        *("emulator", "client", "api", "fake", "redis_url"),
        *("miocreate_emulator", "miocreate_client"),
        # The per-process emulator of the CLI tests, the docs samples' own.
        *("served", "emulated"),
    }
)
_KINDS_THAT_ARE_E2E = ("processes", "docs", "typecheck")
#: Folders whose every test runs a server: the emulator's own tests and the distributed ones.
_E2E_FOLDERS = frozenset({"emulator", "distributed"})


def _mark_kinds(items: list[pytest.Item]) -> None:
    for item in items:
        uses_a_server = not SERVER_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        is_e2e_kind = any(item.get_closest_marker(kind) for kind in _KINDS_THAT_ARE_E2E)
        in_an_e2e_folder = item.path.parent.name in _E2E_FOLDERS
        marked = item.get_closest_marker("e2e") is not None
        if not marked and (uses_a_server or is_e2e_kind or in_an_e2e_folder):
            item.add_marker(pytest.mark.e2e)


class _KindGuard:
    """Fails a test that does what its markers do not say, in its set-up or its run."""

    def __init__(self) -> None:
        self.nodeid: str | None = None
        self.sockets = self.processes = True

    @contextlib.contextmanager
    def watching(self, nodeid: str, *, sockets: bool, processes: bool) -> Iterator[None]:
        self.nodeid, self.sockets, self.processes = nodeid, sockets, processes
        try:
            yield
        finally:
            self.nodeid = None

    def audit(self, event: str, args: tuple[object, ...]) -> None:
        if self.nodeid is None:
            return
        if event in ("socket.connect", "socket.bind") and not self.sockets:
            raise RuntimeError(f"{self.nodeid} opens a socket: mark it e2e")
        if event in ("subprocess.Popen", "os.fork", "os.posix_spawn") and not self.processes:
            raise RuntimeError(f"{self.nodeid} starts a process: mark it processes")


_GUARD = _KindGuard()
sys.addaudithook(_GUARD.audit)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    # Fixtures may start servers (Redis is a process) for any e2e test.
    e2e = item.get_closest_marker("e2e") is not None
    with _GUARD.watching(item.nodeid, sockets=e2e, processes=e2e):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    e2e = item.get_closest_marker("e2e") is not None
    processes = any(item.get_closest_marker(kind) for kind in _KINDS_THAT_ARE_E2E)
    with _GUARD.watching(item.nodeid, sockets=e2e, processes=processes):
        return (yield)


# --- a real Redis, for the distributed tests and the docs' scale-out guide -----------------
# Debian's redis-server on a free port, in a temporary directory, with the settings a production
# journal needs; stopped afterwards. Without redis-server (or the distributed extra) the tests
# that ask for it skip, saying how to enable them.

REDIS_SERVER = shutil.which("redis-server")
ENABLE = (
    "install redis-server (Debian/Ubuntu: `sudo apt-get install redis-server`) and the "
    "distributed extra (`pip install -e '.[dev]'`) to run the distributed tests"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _mark_kinds(items)
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
