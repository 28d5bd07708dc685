"""The emulator's own promises: the auth scheme, a user's files under --data-dir, every injected
fault in the ledger, a per-connection upload cap, settings passed whole, an access log."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import aiohttp
import attrs
import pytest
from conftest import RawApi

from miocreate_async._operations import Operation
from miocreate_async.emulator import Emulator, EmulatorSettings

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def _code(api: RawApi, authorization: str | None) -> tuple[int, int]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with api.session.post(
        api.url(Operation.UPLOAD_URL), json={"file_name": "a.jpg"}, headers=headers
    ) as reply:
        return reply.status, (await reply.json())["code"]


async def test_only_the_configured_scheme_is_accepted(api: RawApi) -> None:
    token = await api.token()
    assert await _code(api, f"Bearer {token}") == (200, 200)
    assert await _code(api, f"bearer {token}") == (200, 200)  # schemes are case-insensitive
    for refused in (
        token,  # a bare token
        f"Basic {token}",
        f"Token {token}",
        f"Bearer {token} extra",
        "Bearer",
        "Bearer ",
        "   ",
        "",
        "\t\t",
        "Bearer \u00e9\u00e9",
    ):
        assert await _code(api, refused) == (200, 401), refused


async def test_a_bare_token_scheme_can_be_configured(tmp_path: Path) -> None:
    async with Emulator(auth_scheme="", data_dir=tmp_path) as emu, aiohttp.ClientSession() as s:
        api = RawApi(emu, s)
        token = await api.token()
        assert await _code(api, token) == (200, 200)
        assert await _code(api, f"Bearer {token}") == (200, 401)


async def test_reset_deletes_only_what_the_emulator_wrote(
    tmp_path: Path, sample_photo: Path
) -> None:
    data_dir = tmp_path / "mine"
    (data_dir / "objects").mkdir(parents=True)
    own = [data_dir / "notes.txt", data_dir / "objects" / "keep.jpg", data_dir / "partial" / "x"]
    own[2].parent.mkdir()
    for path in own:
        path.write_text("the user's own file")
    async with Emulator(data_dir=data_dir, latency=0.01) as emu, aiohttp.ClientSession() as s:
        api = RawApi(emu, s)
        key = await api.upload(sample_photo)
        stored = set((data_dir / "objects").iterdir()) - {own[1]}
        assert len(stored) == 1
        emu.reset()
        assert not any(path.exists() for path in stored)
        assert (await api.call(Operation.ACCESS_URL, {"key": key}))["code"] == 702
    assert all(path.read_text() == "the user's own file" for path in own)


async def test_every_injected_fault_is_in_the_ledger(tmp_path: Path) -> None:
    async with Emulator(data_dir=tmp_path, fail_rate=1.0, seed=3) as emu:
        async with aiohttp.ClientSession() as session:
            for _ in range(12):
                async with session.post(emu.url + "/v1/oauth/token", json={}) as reply:
                    if reply.status == 200:
                        assert (await reply.json())["code"] == 500
        records = emu.ledger["requests"]
    assert len(records) == 12
    assert {record["fault"] for record in records} == {"fail", "html502"}
    for record in records:
        assert (record["fault"], record["code"] or record["status"]) in (
            ("fail", 500),
            ("html502", 502),
        )


async def test_a_forced_code_is_in_the_ledger(api: RawApi, sample_photo: Path) -> None:
    await api.token()
    api.emulator.scenario("upload_url", code=500)
    assert (await api.call(Operation.UPLOAD_URL, {"file_name": "a.jpg"}))["code"] == 500
    api.emulator.scenario("storage_put", code=503)
    target = await api.data(Operation.UPLOAD_URL, {"file_name": "a.jpg"})
    async with api.session.put(target["upload_url"], data=sample_photo.read_bytes()) as reply:
        assert reply.status == 503
    faults = [(r["operation"], r["fault"]) for r in api.emulator.ledger["requests"]]
    assert ("upload_url", "code") in faults
    assert ("storage_put", "code") in faults


async def test_uploads_are_capped_per_connection(tmp_path: Path) -> None:
    size, rate = 256 * 1024, 512 * 1024
    async with (
        Emulator(data_dir=tmp_path, bandwidth_per_connection=rate) as emu,
        aiohttp.ClientSession() as session,
    ):
        api = RawApi(emu, session)
        target = await api.data(Operation.UPLOAD_URL, {"file_name": "big.jpg"})
        started = time.monotonic()
        async with session.put(target["upload_url"], data=b"\xff\xd8\xff" + bytes(size)) as reply:
            assert reply.status == 200
        # A lower bound only: a loaded machine makes it slower, never faster.
        assert time.monotonic() - started >= 0.8 * size / rate
        [upload] = emu.ledger["uploads"]
    assert upload["size"] == size + 3


def test_settings_are_passed_whole_and_options_apply_over_them() -> None:
    settings = EmulatorSettings(seed=5, latency=0.2, credits=10)
    assert Emulator(settings).settings is settings
    emulator = Emulator(settings, credits=3, vision=False)
    assert emulator.settings == attrs.evolve(settings, credits=3)
    assert Emulator(seed=5, latency=0.2, credits=10).settings == settings
    with pytest.raises(TypeError):
        Emulator(no_such_setting=1)


async def test_access_log_is_redacted(
    tmp_path: Path, sample_photo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="miocreate_async.emulator")
    async with (
        Emulator(data_dir=tmp_path, access_log=True) as emu,
        aiohttp.ClientSession() as session,
    ):
        api = RawApi(emu, session)
        await api.upload(sample_photo)
        assert (await api.call(Operation.TASK_DETAIL, {"id": 1}))["code"] == 400
    lines = [record.getMessage() for record in caplog.records]
    assert any("POST /v1/oauth/token 200 code=200" in line for line in lines)
    assert any("POST /v1/task/detail 200 code=400" in line for line in lines)
    [put] = [line for line in lines if " PUT /_storage/" in line]
    assert " 200 " in put
    assert put.count("[redacted]") == 2  # the credential and the signature
    assert "X-Amz-Signature=[redacted]" in put
    assert not any(api._token and api._token in line for line in lines)
