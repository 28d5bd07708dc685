"""Token exchange, single-flight refresh, 401 recovery, environment defaults, redaction."""

from __future__ import annotations

import logging

import anyio
import pytest

from miocreate_async import AuthenticationError, MioCreate
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio


def token_requests(emulator: Emulator) -> int:
    return sum(1 for r in emulator.ledger["requests"] if r["operation"] == "token")


async def test_500_concurrent_calls_make_one_token_request(emulator: Emulator) -> None:
    async with emulator.client() as client, anyio.create_task_group() as group:
        for n in range(500):
            group.start_soon(client.get_upload_url, f"file-{n}.jpg")
    assert token_requests(emulator) == 1
    assert sum(1 for r in emulator.ledger["requests"] if r["operation"] == "upload_url") == 500


async def test_token_is_refreshed_before_it_expires(emulator: Emulator) -> None:
    async with emulator.client() as client:
        await client.get_upload_url("a.jpg")
        assert token_requests(emulator) == 1
        # The client refreshes by its own clock; the emulator's token outlives it here, so
        # a 401 seen afterwards would mean the client kept a stale token.
        auth = client._session.auth
        auth._refresh_at = 0  # type: ignore[union-attr]
        await client.get_upload_url("b.jpg")
        assert token_requests(emulator) == 2


async def test_expired_token_is_replaced_once_on_401(emulator: Emulator) -> None:
    async with emulator.client() as client:
        await client.get_upload_url("a.jpg")
        emulator.advance_clock(emulator.token_ttl + 1)
        target = await client.get_upload_url("b.jpg")
        assert target.key
    assert token_requests(emulator) == 2
    codes = [r["code"] for r in emulator.ledger["requests"] if r["operation"] == "upload_url"]
    assert codes == [200, 401, 200]


async def test_wrong_secret_is_an_authentication_error(emulator: Emulator) -> None:
    async with MioCreate(emulator.client_id, "wrong", base_url=emulator.url) as client:
        with pytest.raises(AuthenticationError):
            await client.get_upload_url("a.jpg")


async def test_static_token_rejected_is_not_refreshed(emulator: Emulator) -> None:
    async with MioCreate(token="not-a-token", base_url=emulator.url) as client:
        with pytest.raises(AuthenticationError):
            await client.get_upload_url("a.jpg")
    assert token_requests(emulator) == 0


async def test_credentials_from_the_environment(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIOCREATE_TOKEN", raising=False)
    monkeypatch.setenv("MIOCREATE_CLIENT_ID", emulator.client_id)
    monkeypatch.setenv("MIOCREATE_CLIENT_SECRET", emulator.client_secret)
    monkeypatch.setenv("MIOCREATE_BASE_URL", emulator.url)
    async with MioCreate() as client:
        assert client.config.base_url == emulator.url
        assert (await client.get_upload_url("a.jpg")).key


async def test_no_secret_in_reprs_errors_or_logs(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="miocreate_async")
    client = MioCreate(emulator.client_id, emulator.client_secret, base_url=emulator.url)
    async with client:
        target = await client.get_upload_url("a.jpg")
        token = await client._session.auth.token()  # type: ignore[union-attr]
        emulator.scenario(operation="upload_url", code=401, count=5)
        with pytest.raises(AuthenticationError) as caught:
            await client.get_upload_url("b.jpg")
    signature = target.upload_url.split("X-Amz-Signature=")[1].split("&")[0]
    shown = [repr(client), repr(target), str(caught.value), repr(caught.value), caplog.text]
    for text in shown:
        assert emulator.client_secret not in text
        assert token not in text
        assert signature not in text
    static = MioCreate(token="tok-very-secret", base_url=emulator.url)
    assert "tok-very-secret" not in repr(static)
    await static.aclose()
    headers = [r["headers"] for r in emulator.ledger["requests"]]
    assert all(token not in str(h) for h in headers)
