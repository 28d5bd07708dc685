"""The session layer: paths and methods as settings, headers, borrowed sessions, pool limits."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import aiohttp
import pytest

from miocreate_async import Config, MioCreate, ProtocolError, __version__
from miocreate_async._envelope import decode
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio

CUSTOM_PATHS = {"image_swap": "/v2/swap/image", "task_detail": "/v2/task"}


@pytest.mark.e2e
async def test_paths_and_task_detail_method_are_settings(
    sample_photo: Path, sample_face: Path
) -> None:
    async with Emulator(latency=0.05, seed=4, paths=CUSTOM_PATHS) as emulator:
        config = Config(base_url=emulator.url, paths=CUSTOM_PATHS, task_detail_method="GET")
        async with MioCreate(emulator.client_id, emulator.client_secret, config=config) as client:
            result = await client.swap_image(sample_photo, face=sample_face)
        assert result.width > 0
        seen = {(r["method"], r["path"].split("?")[0]) for r in emulator.ledger["requests"]}
        assert ("POST", "/v2/swap/image") in seen
        assert ("GET", "/v2/task") in seen
        assert not any(path == "/v1/task/face-swap" for _, path in seen)


async def test_user_agent_and_no_authorization_to_storage(
    client: MioCreate, emulator: Emulator, sample_photo: Path
) -> None:
    await client.upload(sample_photo)
    requests = emulator.ledger["requests"]
    assert all(r["headers"].get("User-Agent") == f"miocreate-async/{__version__}" for r in requests)
    storage = [r for r in requests if r["operation"] == "storage_put"]
    assert storage
    assert all("Authorization" not in r["headers"] for r in storage)
    assert emulator.ledger["leaks"] == []


async def test_a_borrowed_session_is_used_and_left_open(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with MioCreate(
            emulator.client_id, emulator.client_secret, base_url=emulator.url, session=http
        ) as client:
            await client.get_upload_url("a.jpg")
        assert not http.closed
        assert any(
            r["operation"] == "upload_url" and r["status"] == 200
            for r in emulator.ledger["requests"]
        )


def test_non_envelope_replies_are_typed_errors() -> None:
    with pytest.raises(ProtocolError, match="not an API envelope"):
        decode(b"<html>hello</html>", 200, "OK", "task_detail")
    with pytest.raises(ProtocolError, match="not an API envelope"):
        decode(b'{"data": 1}', 200, "OK", "task_detail")
    assert decode(b'{"code": "200", "message": "ok", "data": {"x": 1}}', 200, "OK", "x") == {"x": 1}


# --- one client per event loop --------------------------------------------------------------------


# The first loop's connections die with it, unclosed: that is the user's leak, collected here.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_client_used_from_a_second_event_loop_says_so(
    miocreate_emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    clients = [miocreate_emulator.client()]  # as a script's module-level client would be

    async def swap() -> None:
        await clients[0].swap_image(sample_photo, sample_face)

    try:
        asyncio.run(swap())
        with pytest.raises(RuntimeError, match="event loop") as caught:
            asyncio.run(swap())
        assert "one MioCreate per event loop" in str(caught.value)
        assert type(caught.value) is RuntimeError  # not a group of "Event loop is closed"
    finally:
        asyncio.run(clients[0].aclose())  # closing from anywhere is allowed
        clients.clear()
        gc.collect()
