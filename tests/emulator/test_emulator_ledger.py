"""The ledger and the admin routes: what tests and benchmarks read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import RawApi

from miocreate_async._operations import Operation

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def _admin(api: RawApi, method: str, route: str, body: object = None) -> object:
    url = f"{api.emulator.url}/_emulator/{route}"
    async with api.session.request(method, url, json=body) as reply:
        assert reply.status == 200
        return await reply.json()


async def test_ledger_records_requests_redacted(
    api: RawApi, sample_photo: Path, sample_face: Path
) -> None:
    body = {"main_key": await api.upload(sample_photo), "target_key": await api.upload(sample_face)}
    task_id = await api.create(Operation.IMAGE_SWAP, body)
    await api.call(Operation.ACCESS_URL, {"key": "missing"})
    # The task past its end: its status cannot change between the two reads (on a loaded
    # machine it went from waiting to processing between them).
    api.emulator.advance_clock(60)
    ledger = await _admin(api, "GET", "ledger")
    assert isinstance(ledger, dict)
    assert ledger == api.emulator.ledger | {"clock": ledger["clock"]}
    operations = [record["operation"] for record in ledger["requests"]]
    assert operations == [
        "token",
        "upload_url",
        "storage_put",
        "upload_url",
        "storage_put",
        "image_swap",
        "access_url",
    ]
    token_request, *_, put, swap, access = ledger["requests"]
    assert token_request["path"] == "/v1/oauth/token"
    assert token_request["code"] == 200
    assert swap["headers"]["Authorization"] == "[redacted]"
    assert "[redacted]" in put["path"]
    assert "X-Amz-Signature" in put["path"]
    assert (put["method"], put["status"], put["code"]) == ("PUT", 200, None)
    assert (access["status"], access["code"]) == (200, 702)
    assert all(isinstance(record["time"], float) for record in ledger["requests"])
    [task] = ledger["tasks"]
    assert (task["id"], task["kind"], task["request"]) == (task_id, "image_swap", body)
    assert task["status"] == "succeeded"  # the clock moved past its end
    assert [upload["file_name"] for upload in ledger["uploads"]] == ["photo.jpg", "face.png"]
    assert (ledger["credits_spent"], ledger["leaks"]) == (1, [])
    assert ledger["credits_left"] == 1_000_000 - 1


async def test_admin_routes_are_not_recorded_and_reset(api: RawApi, sample_photo: Path) -> None:
    await api.upload(sample_photo)
    before = await _admin(api, "POST", "clock", {"advance": 10})
    assert isinstance(before, dict)
    assert before["ok"]
    ledger = await _admin(api, "GET", "ledger")
    assert isinstance(ledger, dict)
    assert not any(r["path"].startswith("/_emulator") for r in ledger["requests"])
    assert await _admin(api, "POST", "reset") == {"ok": True}
    ledger = api.emulator.ledger
    assert (ledger["tasks"], ledger["uploads"], ledger["requests"]) == ([], [], [])
    # Tokens outlive a reset; the stored objects do not.
    assert (await api.call(Operation.UPLOAD_URL, {"file_name": "a.png"}))["code"] == 200


async def test_paths_are_settings(tmp_path: Path) -> None:
    import aiohttp

    from miocreate_async.emulator import Emulator

    paths = {"image_swap": "/v2/swap"}
    async with Emulator(paths=paths, data_dir=tmp_path) as emu, aiohttp.ClientSession() as session:
        async with session.post(emu.url + "/v2/swap", json={}) as reply:
            assert (await reply.json())["code"] == 401
        async with session.post(emu.url + "/v1/task/face-swap", json={}) as reply:
            assert reply.status == 404
