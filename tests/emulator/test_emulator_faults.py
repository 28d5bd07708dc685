"""Faults: forced by scenarios, or drawn at random from a seed that replays them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from conftest import RawApi

from miocreate_async._operations import Operation
from miocreate_async.emulator import Emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def _fault_pattern(tmp_path: Path, seed: int) -> list[str]:
    options: dict[str, Any] = {
        "fail_rate": 0.3,
        "cut_rate": 0.3,
        "slow_rate": 0.1,
        "slow_delay": 0.01,
    }
    async with (
        Emulator(seed=seed, data_dir=tmp_path, **options) as emu,
        aiohttp.ClientSession() as session,
    ):
        outcomes = []
        for _ in range(20):
            try:
                async with session.post(emu.url + "/v1/oauth/token", json={}) as reply:
                    if reply.status == 502:
                        outcomes.append("html502")
                    else:
                        outcomes.append(str((await reply.json())["code"]))
            except aiohttp.ClientConnectionError:
                outcomes.append("cut")
        faults = [record["fault"] for record in emu.ledger["requests"]]
        assert "slow" in faults
        return outcomes


async def test_faults_replay_with_a_seed(tmp_path: Path) -> None:
    first = await _fault_pattern(tmp_path / "a", seed=7)
    assert await _fault_pattern(tmp_path / "b", seed=7) == first
    assert {"cut", "html502", "500", "400"} <= set(first)
    assert await _fault_pattern(tmp_path / "c", seed=8) != first


async def test_cut_before_acting(api: RawApi, sample_photo: Path, sample_face: Path) -> None:
    body = {"main_key": await api.upload(sample_photo), "target_key": await api.upload(sample_face)}
    api.emulator.scenario(Operation.IMAGE_SWAP, fault="cut")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call(Operation.IMAGE_SWAP, body)
    ledger = api.emulator.ledger
    assert ledger["tasks"] == []
    assert ledger["credits_spent"] == 0


async def test_cut_after_the_task_was_made(
    api: RawApi, sample_photo: Path, sample_face: Path
) -> None:
    body = {"main_key": await api.upload(sample_photo), "target_key": await api.upload(sample_face)}
    api.emulator.scenario(Operation.IMAGE_SWAP, fault="cut_after")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call(Operation.IMAGE_SWAP, body)
    [task] = api.emulator.ledger["tasks"]
    assert task["request"] == body  # a retry would pay twice: the task exists


async def test_slow_html502_and_http_status(api: RawApi) -> None:
    emulator = api.emulator
    emulator.scenario(Operation.UPLOAD_URL, fault="slow", delay=0.2)
    started = time.monotonic()
    assert (await api.call(Operation.UPLOAD_URL, {"file_name": "a.jpg"}))["code"] == 200
    assert time.monotonic() - started >= 0.2
    emulator.scenario(Operation.UPLOAD_URL, fault="html502")
    emulator.scenario(Operation.UPLOAD_URL, fault="http", http_status=429, retry_after=3)
    headers = {"Authorization": f"Bearer {await api.token()}"}
    url, body = api.url(Operation.UPLOAD_URL), {"file_name": "a.jpg"}
    async with api.session.post(url, json=body, headers=headers) as reply:
        assert reply.status == 502
        assert reply.content_type == "text/html"
    async with api.session.post(url, json=body, headers=headers) as reply:
        assert (reply.status, reply.headers["Retry-After"]) == (429, "3")
    assert (await api.call(Operation.UPLOAD_URL, body))["code"] == 200


async def test_scenario_matches_by_key_and_count(
    api: RawApi, sample_photo: Path, tmp_path: Path
) -> None:
    other = sample_photo.read_bytes()
    (tmp_path / "other.jpg").write_bytes(other)
    key = await api.upload(sample_photo)
    second = await api.upload(tmp_path / "other.jpg")
    api.emulator.scenario(Operation.FACE_DETECTION, key=key, code=602, count=2)
    codes = [
        (await api.call(Operation.FACE_DETECTION, {"main_key": k}))["code"]
        for k in (second, key, key, key)
    ]
    assert codes == [200, 602, 602, 200]


async def test_storage_scenario(api: RawApi, sample_photo: Path) -> None:
    target = await api.data(Operation.UPLOAD_URL, {"file_name": "p.jpg"})
    api.emulator.scenario("storage_put", fault="cut")
    # By hand: aiohttp silently retries an idempotent PUT cut without a reply.
    payload = sample_photo.read_bytes()
    parts = urlsplit(target["upload_url"])
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        assert await reader.read() == b""  # closed without a reply
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    async with api.session.put(target["upload_url"], data=sample_photo.read_bytes()) as reply:
        assert reply.status == 200


async def test_admin_scenario_route_validates(api: RawApi) -> None:
    url = api.emulator.url + "/_emulator/scenario"
    async with api.session.post(url, json={"operation": "nope"}) as reply:
        assert reply.status == 400
    async with api.session.post(url, json=[{"operation": "token", "code": 500}]) as reply:
        assert reply.status == 200
    assert (await api.call(Operation.TOKEN, {}, auth=False))["code"] == 500
