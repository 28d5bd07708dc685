"""Token exchange, single-flight refresh, 401 recovery, environment defaults, redaction."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from fake_service import FakeService, envelope, json_bytes, serve_upload_url, storage_url

from miocreate_async import (
    AuthenticationError,
    MioCreate,
    MioCreateError,
    Operation,
    ProtocolError,
)
from miocreate_async.emulator import Emulator, write_sample_photo

pytestmark = pytest.mark.anyio

SECRET = "fake-secret-value"
TOKEN = "tok-SECRET-4242"


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


# --- against a fake service: no secret in any error or log line, whatever the service echoes ---


async def test_token_endpoint_echoing_the_secret_is_scrubbed(
    fake: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    fake.reply(Operation.TOKEN, code=401, message=f"client_secret {SECRET} is wrong for fake-id")
    caplog.set_level(logging.DEBUG, logger="miocreate_async")
    async with fake.client(token=None) as mc:
        with pytest.raises(AuthenticationError) as caught:
            await mc.get_upload_url("a.jpg")
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, {"code": 400, "message": "bad header Authorization: Bearer {token}"}, MioCreateError),
        (200, {"code": 500, "message": "token {token} rejected"}, MioCreateError),
        (502, "<html>proxy saw Bearer {token}</html>", MioCreateError),
        (200, "<html>{token}</html>", ProtocolError),
    ],
)
async def test_api_text_echoing_the_token_is_scrubbed(
    fake: FakeService,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: Any,
    error: type[Exception],
) -> None:
    text = json_bytes(body) if isinstance(body, dict) else body.encode()
    fake.raw(Operation.UPLOAD_URL, text.replace(b"{token}", TOKEN.encode()), status=status)
    caplog.set_level(logging.DEBUG, logger="miocreate_async")
    async with fake.client(token=TOKEN) as mc:
        with pytest.raises(error) as caught:
            await mc.get_upload_url("a.jpg")
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)
    assert TOKEN not in caplog.text


async def test_every_issued_token_is_scrubbed(fake: FakeService) -> None:
    issued = iter(["tok-first-AAAA1111", "tok-second-BBBB2222"])

    async def token(request: web.Request) -> web.Response:
        await request.read()
        return envelope({"access_token": next(issued), "expires_in": 3600})

    calls = 0

    async def upload_url(request: web.Request) -> web.Response:
        nonlocal calls
        await request.read()
        calls += 1
        if calls == 1:
            return envelope(code=401, message="expired")
        return envelope(code=400, message="tokens tok-first-AAAA1111 and tok-second-BBBB2222")

    fake.api(Operation.TOKEN, token)
    fake.api(Operation.UPLOAD_URL, upload_url)
    async with fake.client(token=None) as mc:
        with pytest.raises(MioCreateError) as caught:
            await mc.get_upload_url("a.jpg")
    assert "AAAA1111" not in str(caught.value)
    assert "BBBB2222" not in str(caught.value)


# --- odd token replies: a bare OAuth reply, no token, a null token -------------------------------


async def test_bare_oauth_token_reply_is_accepted(fake: FakeService) -> None:
    seen: list[str] = []

    async def token(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"access_token": "bare-oauth-token", "expires_in": 3600})

    async def upload_url(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return envelope({"upload_url": storage_url(fake), "key": "u/o.jpg"})

    fake.api(Operation.TOKEN, token)
    fake.api(Operation.UPLOAD_URL, upload_url)
    async with fake.client(token=None) as mc:
        target = await mc.get_upload_url("a.jpg")
    assert target.key == "u/o.jpg"
    assert seen == ["Bearer bare-oauth-token"]


async def test_bare_token_reply_without_token_is_refused_unquoted(fake: FakeService) -> None:
    fake.raw(
        Operation.TOKEN,
        json_bytes({"error": "invalid_client", "echo": SECRET, "detail": "x" * 50}),
    )
    async with fake.client(token=None) as mc:
        with pytest.raises(MioCreateError) as caught:
            await mc.get_upload_url("a.jpg")
    assert SECRET not in str(caught.value)
    assert "invalid_client" not in str(caught.value)


async def test_null_token_is_a_protocol_error_never_bearer_none(fake: FakeService) -> None:
    fake.reply(Operation.TOKEN, {"access_token": None, "expires_in": 3600})
    seen: list[str] = []

    async def upload_url(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return envelope({"upload_url": storage_url(fake), "key": "u/o.jpg"})

    fake.api(Operation.UPLOAD_URL, upload_url)
    async with fake.client(token=None) as mc:
        with pytest.raises(ProtocolError) as caught:
            await mc.get_upload_url("a.jpg")
    assert "access_token" in str(caught.value)
    assert seen == []


# --- errors are never shared; transient token failures are retried -------------------------------


async def test_each_waiter_gets_its_own_token_error(fake: FakeService) -> None:
    fake.reply(Operation.TOKEN, code=401, message="bad key pair")
    serve_upload_url(fake)
    errors: list[BaseException] = []

    async def call() -> None:
        try:
            await mc.get_upload_url("a.jpg")
        except Exception as exc:
            errors.append(exc)

    async with fake.client(token=None) as mc, anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(call)
    assert len(errors) == 20
    assert all(isinstance(error, AuthenticationError) for error in errors)
    assert len({id(error) for error in errors}) == 20


async def test_transient_token_failure_is_retried_for_waiters(fake: FakeService) -> None:
    failures = 3  # as many as one exchange's attempts (QUICK_RETRY)

    async def token(request: web.Request) -> web.Response:
        nonlocal failures
        await request.read()
        await anyio.sleep(0.05)
        if failures > 0:
            failures -= 1
            return envelope(code=500, message="busy")
        return envelope({"access_token": "good", "expires_in": 3600})

    fake.api(Operation.TOKEN, token)
    serve_upload_url(fake)
    outcomes: list[object] = []

    async def call() -> None:
        try:
            outcomes.append(await mc.get_upload_url("a.jpg"))
        except Exception as exc:
            outcomes.append(exc)

    async with fake.client(token=None) as mc, anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(call)
    succeeded = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(succeeded) >= 19, outcomes


# --- expires_in <= 0 never causes one exchange per call ------------------------------------------


@pytest.mark.parametrize("expires_in", [0, -5, 0.001, "nan"])
async def test_short_token_lives_are_floored(fake: FakeService, expires_in: Any) -> None:
    async def token(request: web.Request) -> web.Response:
        await request.read()
        value = math.nan if expires_in == "nan" else expires_in
        return envelope({"access_token": "t", "expires_in": value})

    fake.api(Operation.TOKEN, token)
    serve_upload_url(fake)
    async with fake.client(token=None) as mc:
        for _ in range(10):
            await mc.get_upload_url("a.jpg")
    assert fake.hits[fake.path(Operation.TOKEN)] <= 2


# --- only a real credentials failure is an AuthenticationError -----------------------------------


async def test_token_expiring_twice_in_one_call_is_not_an_auth_error(
    emulator: Emulator, tmp_path: Path
) -> None:
    async with emulator.client() as mc:
        key = await mc.upload(write_sample_photo(tmp_path / "p.jpg"))
        emulator.scenario("task_detail", code=401, count=2)
        task = await mc.create_image_swap(key, key)
        info = await mc.get_task(task)
    assert info.id == task.id
