"""Shared fixtures: a fast emulator in the test's own loop, a client bound to it, samples."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

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
