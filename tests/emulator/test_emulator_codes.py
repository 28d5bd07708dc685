"""One test per documented code, driven with plain aiohttp."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from conftest import RawApi

from miocreate_async._operations import Operation
from miocreate_async.emulator import Emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def _swap_body(api: RawApi, photo: Path, face: Path) -> dict[str, str]:
    return {"main_key": await api.upload(photo), "target_key": await api.upload(face)}


async def test_400_malformed_body(api: RawApi) -> None:
    headers = {"Authorization": f"Bearer {await api.token()}", "Content-Type": "application/json"}
    async with api.session.post(
        api.url(Operation.UPLOAD_URL), data=b"{not json", headers=headers
    ) as reply:
        assert (await reply.json())["code"] == 400
    assert (await api.call(Operation.UPLOAD_URL, {"name": "x.jpg"}))["code"] == 400
    assert (await api.call(Operation.TASK_DETAIL, {"id": "abc"}))["code"] == 400


async def test_401_without_or_with_a_bad_token(api: RawApi) -> None:
    envelope = await api.call(Operation.UPLOAD_URL, {"file_name": "a.jpg"}, auth=False)
    assert envelope["code"] == 401
    headers = {"Authorization": "Bearer forged"}
    async with api.session.post(
        api.url(Operation.UPLOAD_URL), json={"file_name": "a.jpg"}, headers=headers
    ) as reply:
        assert reply.status == 200  # the envelope carries the error
        assert (await reply.json())["code"] == 401


async def test_401_wrong_credentials(api: RawApi) -> None:
    body = {"client_id": api.emulator.client_id, "client_secret": "wrong"}
    assert (await api.call(Operation.TOKEN, body, auth=False))["code"] == 401


async def test_401_expired_token(api: RawApi) -> None:
    assert (await api.call(Operation.UPLOAD_URL, {"file_name": "a.jpg"}))["code"] == 200
    api.emulator.advance_clock(3601)
    assert (await api.call(Operation.UPLOAD_URL, {"file_name": "a.jpg"}))["code"] == 401


async def test_500_fail_rate(tmp_path: Path) -> None:
    async with (
        Emulator(fail_rate=1.0, seed=3, data_dir=tmp_path) as emu,
        aiohttp.ClientSession() as session,
    ):
        seen = set()
        for _ in range(12):
            async with session.post(emu.url + "/v1/oauth/token", json={}) as reply:
                if reply.status == 502:
                    assert "<html>" in await reply.text()
                    seen.add(502)
                else:
                    seen.add((await reply.json())["code"])
        assert seen == {500, 502}


@pytest.mark.parametrize("code", [500, 601, 602, 603, 604, 605])
async def test_codes_on_demand(
    api: RawApi, sample_photo: Path, sample_face: Path, code: int
) -> None:
    body = await _swap_body(api, sample_photo, sample_face)
    api.emulator.scenario(Operation.IMAGE_SWAP, code=code)
    envelope = await api.call(Operation.IMAGE_SWAP, body)
    assert envelope["code"] == code
    assert envelope["message"]
    # The scenario was used up: the next request succeeds.
    assert (await api.call(Operation.IMAGE_SWAP, body))["code"] == 200


async def test_701_undecodable_image(api: RawApi, tmp_path: Path, sample_face: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 100)
    body = {"main_key": await api.upload(broken), "target_key": await api.upload(sample_face)}
    assert (await api.call(Operation.IMAGE_SWAP, body))["code"] == 701


async def test_702_unknown_key(api: RawApi, sample_face: Path) -> None:
    body = {"main_key": "temporary/nope.jpg", "target_key": await api.upload(sample_face)}
    assert (await api.call(Operation.IMAGE_SWAP, body))["code"] == 702
    assert (await api.call(Operation.ACCESS_URL, {"key": "temporary/nope.jpg"}))["code"] == 702


async def test_703_by_name_and_by_content(api: RawApi, tmp_path: Path, sample_face: Path) -> None:
    assert (await api.call(Operation.UPLOAD_URL, {"file_name": "notes.txt"}))["code"] == 703
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is text, whatever its name says")
    body = {"main_key": await api.upload(fake), "target_key": await api.upload(sample_face)}
    assert (await api.call(Operation.IMAGE_SWAP, body))["code"] == 703
    # A photo where a video is expected is refused too.
    body["main_key"] = body["target_key"]
    assert (await api.call(Operation.VIDEO_SWAP, body))["code"] == 703


async def test_704_too_large(tmp_path: Path, sample_photo: Path, sample_face: Path) -> None:
    async with (
        Emulator(max_object_bytes=1000, data_dir=tmp_path / "e") as emu,
        aiohttp.ClientSession() as session,
    ):
        api = RawApi(emu, session)
        body = await _swap_body(api, sample_photo, sample_face)
        assert (await api.call(Operation.IMAGE_SWAP, body))["code"] == 704


async def test_801_credits(tmp_path: Path, sample_photo: Path, sample_face: Path) -> None:
    async with (
        Emulator(credits=1, data_dir=tmp_path / "e") as emu,
        aiohttp.ClientSession() as session,
    ):
        api = RawApi(emu, session)
        body = await _swap_body(api, sample_photo, sample_face)
        assert (await api.call(Operation.IMAGE_SWAP, body))["code"] == 200
        assert (await api.call(Operation.IMAGE_SWAP, body))["code"] == 801
        ledger = emu.ledger
        assert (ledger["credits_spent"], ledger["credits_left"]) == (1, 0)
        assert len(ledger["tasks"]) == 1


async def test_802_request_quota(tmp_path: Path) -> None:
    async with (
        Emulator(request_quota=3, data_dir=tmp_path) as emu,
        aiohttp.ClientSession() as session,
    ):
        api = RawApi(emu, session)
        codes = [
            (await api.call(Operation.UPLOAD_URL, {"file_name": "a.jpg"}))["code"] for _ in range(4)
        ]
        assert codes == [200, 200, 802, 802]  # the token exchange was the first request
