"""Issue 11, single calls: broken servers, hostile replies and misuse never break a promise."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from fake_service import (
    FakeService,
    RawServer,
    envelope,
    image_result,
    json_bytes,
    signed_query,
)

from miocreate_async import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    ImageSwapResult,
    InvalidInputError,
    Key,
    MioCreateError,
    MioCreateTimeoutError,
    Operation,
    ProtocolError,
    StorageError,
    StreamSource,
    SubmissionUncertainError,
    UnsupportedFormatError,
)
from miocreate_async.emulator import Emulator, write_sample_photo, write_sample_video

pytestmark = pytest.mark.anyio

SECRET = "fake-secret-value"
TOKEN = "tok-SECRET-4242"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000


@pytest.fixture
async def fake() -> AsyncIterator[FakeService]:
    async with FakeService() as service:
        yield service


def _storage(fake: FakeService, name: str = "o.jpg") -> str:
    return f"{fake.url}/storage/{name}?{signed_query()}"


def _serve_upload_url(fake: FakeService, url: str | None = None, key: str = "u/o.jpg") -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return envelope({"upload_url": url or _storage(fake), "key": key})

    fake.api(Operation.UPLOAD_URL, handler)


# --- item 4: a garbled 200 to a creation is uncertain -------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": 200, "message": "ok", "data": {"task_',
        b"<html><body>Welcome</body></html>",
        b'{"code": 200, "message": "ok", "data": {}}',
        b'{"code": 200, "message": "ok", "data": {"task_id": 1.5}}',
        b'{"code": 200, "message": "ok", "data": {"task_id": true}}',
        b'{"code": 200, "message": "ok", "data": null}',
        b"",
    ],
)
async def test_garbled_creation_reply_is_uncertain(fake: FakeService, body: bytes) -> None:
    fake.raw(Operation.IMAGE_SWAP, body)
    async with fake.client() as mc:
        with pytest.raises(SubmissionUncertainError) as caught:
            await mc.create_image_swap("u/a.jpg", "u/b.jpg")
    assert isinstance(caught.value.__cause__, ProtocolError)
    assert fake.hits[fake.path(Operation.IMAGE_SWAP)] == 1  # never re-sent
    assert "list" in str(caught.value)  # item 28: says the API cannot list tasks


# --- item 6: no secret in any error or log line -------------------------------------------------


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


async def test_storage_message_echoing_the_signature_is_scrubbed(fake: FakeService) -> None:
    _serve_upload_url(fake)

    async def put(request: web.Request) -> web.Response:
        await request.read()
        body = (
            "<Error><Code>SignatureDoesNotMatch</Code><Message>expected "
            f"0123456789abcdef0123456789abcdef for {request.path_qs}</Message></Error>"
        )
        return web.Response(status=403, body=body.encode())

    fake.route("PUT", "/storage/o.jpg", put)
    async with fake.client() as mc:
        with pytest.raises(StorageError) as caught:
            await mc.upload(JPEG, file_name="a.jpg")
    assert "0123456789abcdef0123456789abcdef" not in str(caught.value)
    assert caught.value.storage_code == "SignatureDoesNotMatch"


async def test_bare_oauth_token_reply_is_accepted(fake: FakeService) -> None:
    seen: list[str] = []

    async def token(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"access_token": "bare-oauth-token", "expires_in": 3600})

    async def upload_url(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return envelope({"upload_url": _storage(fake), "key": "u/o.jpg"})

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


# --- item 7: aclose() ends in-flight transfers promptly -----------------------------------------


async def test_aclose_ends_a_running_download(fake: FakeService, tmp_path: Path) -> None:
    started = anyio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(10 << 20)})
        await response.prepare(request)
        await response.write(b"x" * 4096)
        started.set()
        await anyio.sleep(30)
        return response

    fake.route("GET", "/storage/big.jpg", slow)
    mc = fake.client(stall_timeout=30)
    errors: list[BaseException] = []
    failed = anyio.Event()

    async def download() -> None:
        try:
            await mc.download(_storage(fake, "big.jpg"), tmp_path / "out.jpg")
        except Exception as exc:
            errors.append(exc)
            failed.set()

    async with anyio.create_task_group() as group:
        group.start_soon(download)
        with anyio.fail_after(10):
            await started.wait()
        await mc.aclose()
        with anyio.fail_after(2):
            await failed.wait()
    assert isinstance(errors[0], ClientClosedError)
    assert not (tmp_path / "out.jpg").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


async def test_aclose_ends_a_running_upload(fake: FakeService) -> None:
    _serve_upload_url(fake)
    started = anyio.Event()

    async def hang(request: web.Request) -> web.Response:
        await request.content.read(1024)
        started.set()
        await anyio.sleep(30)
        return web.Response()

    fake.route("PUT", "/storage/o.jpg", hang)
    mc = fake.client(stall_timeout=30)
    errors: list[BaseException] = []
    failed = anyio.Event()

    async def upload() -> None:
        try:
            await mc.upload(JPEG + b"\x00" * (4 << 20), file_name="a.jpg")
        except Exception as exc:
            errors.append(exc)
            failed.set()

    async with anyio.create_task_group() as group:
        group.start_soon(upload)
        with anyio.fail_after(10):
            await started.wait()
        await mc.aclose()
        with anyio.fail_after(2):
            await failed.wait()
    assert isinstance(errors[0], ClientClosedError), repr(errors[0])
    assert fake.hits["/storage/o.jpg"] == 1


# --- item 8: replies cannot crash the client ----------------------------------------------------


NULL_KEY_RESULT = {**image_result("http://x/y"), "merge_key": None}


def _serve_detail(fake: FakeService, data: Any) -> None:
    fake.reply(Operation.TASK_DETAIL, data)


async def test_huge_task_ids_are_fine(fake: FakeService) -> None:
    huge = 2**70 + 3
    fake.reply(Operation.IMAGE_SWAP, {"task_id": str(huge)})
    _serve_detail(fake, {"id": huge, "status": 1, "message": "waiting"})
    async with fake.client() as mc:
        task = await mc.create_image_swap("u/a.jpg", "u/b.jpg")
        info = await mc.get_task(task)
    assert task.id == huge
    assert info.id == huge


@pytest.mark.parametrize("expires", ["9" * 30, "99999999999", "-99999999999"])
async def test_absurd_result_expiry_is_clamped(fake: FakeService, expires: str) -> None:
    url = f"{fake.url}/storage/r.jpg?{signed_query('20260101T000000Z', expires)}"
    _serve_detail(fake, {"id": 5, "status": 0, "additional_data": image_result(url)})
    async with fake.client() as mc:
        info = await mc.get_task(5)
    assert isinstance(info.result, ImageSwapResult)
    assert info.result.expires_at is not None


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"id": 5, "status": 1.5}, "status"),
        ({"id": 5, "status": True}, "status"),
        ({"id": 5, "status": "nan"}, "status"),
        ({"id": 5.5, "status": 1}, "id"),
        ({"id": 5, "status": None}, "status"),
        (
            {
                "id": 5,
                "status": 0,
                "additional_data": {**image_result("http://x/y"), "merge_key": None},
            },
            "merge_key",
        ),
    ],
)
async def test_bad_detail_values_are_protocol_errors(
    fake: FakeService, detail: dict[str, Any], field: str
) -> None:
    _serve_detail(fake, detail)
    async with fake.client() as mc:
        with pytest.raises(ProtocolError) as caught:
            await mc.get_task(5)
    assert field in str(caught.value)


async def test_null_token_is_a_protocol_error_never_bearer_none(fake: FakeService) -> None:
    fake.reply(Operation.TOKEN, {"access_token": None, "expires_in": 3600})
    seen: list[str] = []

    async def upload_url(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return envelope({"upload_url": _storage(fake), "key": "u/o.jpg"})

    fake.api(Operation.UPLOAD_URL, upload_url)
    async with fake.client(token=None) as mc:
        with pytest.raises(ProtocolError) as caught:
            await mc.get_upload_url("a.jpg")
    assert "access_token" in str(caught.value)
    assert seen == []


async def test_null_key_is_a_protocol_error(fake: FakeService) -> None:
    fake.reply(Operation.UPLOAD_URL, {"upload_url": _storage(fake), "key": None})
    async with fake.client() as mc:
        with pytest.raises(ProtocolError) as caught:
            await mc.get_upload_url("a.jpg")
    assert "key" in str(caught.value)


# --- item 10: a session-wide Authorization never reaches storage on downloads -------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # aiohttp 3.13 deprecates auth=
@pytest.mark.parametrize("how", ["header", "auth"])
async def test_download_refuses_session_wide_authorization(
    fake: FakeService, tmp_path: Path, how: str
) -> None:
    async def get(request: web.Request) -> web.Response:
        return web.Response(body=JPEG)

    fake.route("GET", "/storage/r.jpg", get)
    kwargs: dict[str, Any] = (
        {"headers": {"Authorization": "Bearer leaked"}}
        if how == "header"
        else {"auth": aiohttp.BasicAuth("user", "pass")}
    )
    async with aiohttp.ClientSession(**kwargs) as session:
        from miocreate_async import MioCreate

        async with MioCreate(token="t", base_url=fake.url, session=session) as mc:
            with pytest.raises(ConfigurationError):
                await mc.download(_storage(fake, "r.jpg"), tmp_path / "r.jpg")
    assert fake.hits["/storage/r.jpg"] == 0


# --- item 11: bad waits are refused at once -----------------------------------------------------


@pytest.mark.parametrize("timeout", [math.nan, 0, -1, math.inf])
async def test_wait_refuses_bad_timeouts(fake: FakeService, timeout: float) -> None:
    _serve_detail(fake, {"id": 5, "status": 1})
    async with fake.client() as mc:
        with anyio.fail_after(5), pytest.raises((InvalidInputError, ConfigurationError)):
            await mc.wait(5, timeout=timeout)
        with anyio.fail_after(5), pytest.raises((InvalidInputError, ConfigurationError)):
            await mc.swap_image(Key("u/a.jpg"), Key("u/b.jpg"), timeout=timeout)
    assert fake.hits[fake.path(Operation.TASK_DETAIL)] == 0


# --- item 13: errors are never shared; transient token failures are retried ---------------------


async def test_each_waiter_gets_its_own_token_error(fake: FakeService) -> None:
    fake.reply(Operation.TOKEN, code=401, message="bad key pair")
    _serve_upload_url(fake)
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
    _serve_upload_url(fake)
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


# --- item 14: bad input to single calls is a typed InvalidInputError ----------------------------


@pytest.mark.parametrize("path", ["a\0b.jpg", "/tmp/x\0.jpg", "dir/a\0.jpg"])
async def test_nul_in_paths(fake: FakeService, path: str) -> None:
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.upload(path)
        with pytest.raises(InvalidInputError):
            await mc.swap_image(path, Key("u/b.jpg"))
    assert sum(fake.hits.values()) == 0


async def _text_chunks() -> AsyncIterator[Any]:
    yield "\xff\xd8\xffnot bytes"


async def _int_chunks() -> AsyncIterator[Any]:
    yield 12345


@pytest.mark.parametrize("chunks", [_text_chunks, _int_chunks])
async def test_stream_source_with_bad_chunks(fake: FakeService, chunks: Any) -> None:
    _serve_upload_url(fake)
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.upload(StreamSource(chunks(), 100, "a.jpg"))


async def test_stream_source_raising_is_typed(fake: FakeService) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield JPEG[:100]
        raise RuntimeError("the producer broke")

    _serve_upload_url(fake)

    async def put(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    fake.route("PUT", "/storage/o.jpg", put)
    async with fake.client() as mc:
        with pytest.raises(MioCreateError) as caught:
            await mc.upload(StreamSource(broken(), 5000, "a.jpg"))
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_download_destination_under_a_file(fake: FakeService, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.download(_storage(fake, "r.jpg"), tmp_path / "file.txt" / "out.jpg")
        with pytest.raises(InvalidInputError):
            await mc.download(_storage(fake, "r.jpg"), str(tmp_path / "file.txt" / "sub") + "/")
    assert fake.hits["/storage/r.jpg"] == 0


@pytest.mark.parametrize("name", ["out\0.jpg", "a" * 300 + ".jpg"])
async def test_download_bad_names(fake: FakeService, tmp_path: Path, name: str) -> None:
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.download(_storage(fake, "r.jpg"), tmp_path / name)
    assert fake.hits["/storage/r.jpg"] == 0


async def test_download_name_that_fits_but_its_temporary_file_would_not(
    fake: FakeService, tmp_path: Path
) -> None:
    async def get(request: web.Request) -> web.Response:
        return web.Response(body=JPEG)

    fake.route("GET", "/storage/r.jpg", get)
    name = "b" * 250 + ".jpg"
    async with fake.client() as mc:
        path = await mc.download(_storage(fake, "r.jpg"), tmp_path / name)
    assert path.read_bytes() == JPEG
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("key", ["results/a\0b.jpg", "results/" + "c" * 400 + ".jpg"])
async def test_result_names_from_the_server(fake: FakeService, tmp_path: Path, key: str) -> None:
    async def get(request: web.Request) -> web.Response:
        return web.Response(body=JPEG)

    fake.route("GET", "/storage/r.jpg", get)
    result = image_result(_storage(fake, "r.jpg"), size=len(JPEG), key=key)
    _serve_detail(fake, {"id": 5, "status": 0, "additional_data": result})
    async with fake.client() as mc:
        info = await mc.get_task(5)
        assert isinstance(info.result, ImageSwapResult)
        try:
            path = await info.result.download(tmp_path)
        except InvalidInputError:
            return
    assert path.parent == tmp_path
    assert path.read_bytes() == JPEG


# --- item 15: expires_in <= 0 never causes one exchange per call --------------------------------


@pytest.mark.parametrize("expires_in", [0, -5, 0.001, "nan"])
async def test_short_token_lives_are_floored(fake: FakeService, expires_in: Any) -> None:
    async def token(request: web.Request) -> web.Response:
        await request.read()
        value = math.nan if expires_in == "nan" else expires_in
        return envelope({"access_token": "t", "expires_in": value})

    fake.api(Operation.TOKEN, token)
    _serve_upload_url(fake)
    async with fake.client(token=None) as mc:
        for _ in range(10):
            await mc.get_upload_url("a.jpg")
    assert fake.hits[fake.path(Operation.TOKEN)] <= 2


# --- item 16: API replies are size-capped -------------------------------------------------------


async def test_huge_api_reply_is_a_protocol_error(fake: FakeService) -> None:
    padding = "x" * (64 << 20)
    fake.raw(
        Operation.UPLOAD_URL,
        json_bytes({"code": 200, "message": padding, "data": {"upload_url": "x", "key": "k"}}),
    )
    async with fake.client() as mc:
        with pytest.raises(ProtocolError):
            await mc.get_upload_url("a.jpg")


async def test_huge_creation_reply_is_uncertain(fake: FakeService) -> None:
    fake.raw(Operation.IMAGE_SWAP, b'{"code": 200, "message": "' + b"y" * (64 << 20) + b'"}')
    async with fake.client() as mc:
        with pytest.raises(SubmissionUncertainError) as caught:
            await mc.create_image_swap("u/a.jpg", "u/b.jpg")
    assert isinstance(caught.value.__cause__, ProtocolError)


# --- item 17: non-http(s) URLs are protocol errors ----------------------------------------------


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x.jpg", "file:///etc/passwd", "/relative/x"])
async def test_upload_url_not_http(fake: FakeService, url: str) -> None:
    _serve_upload_url(fake, url=url)
    async with fake.client() as mc:
        with pytest.raises(ProtocolError):
            await mc.upload(JPEG, file_name="a.jpg")
    assert fake.hits[fake.path(Operation.UPLOAD_URL)] == 1


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x.jpg", "file:///etc/passwd", "javascript:x"])
async def test_result_url_not_http(fake: FakeService, tmp_path: Path, url: str) -> None:
    _serve_detail(fake, {"id": 5, "status": 0, "additional_data": image_result(url)})
    async with fake.client() as mc:
        info = await mc.get_task(5)
        assert isinstance(info.result, ImageSwapResult)
        with pytest.raises(ProtocolError):
            await info.result.download(tmp_path)
        with pytest.raises(ProtocolError):
            await mc.download(url, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- item 19: strict hd and keys ----------------------------------------------------------------


@pytest.mark.parametrize("hd", ["no", "", 1, None])
async def test_hd_must_be_a_bool(fake: FakeService, hd: Any) -> None:
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.create_image_swap("u/a.jpg", "u/b.jpg", hd=hd)
        with pytest.raises(InvalidInputError):
            await mc.create_video_swap("u/a.mp4", "u/b.jpg", hd=hd)
        with pytest.raises(InvalidInputError):
            await mc.swap_image(Key("u/a.jpg"), Key("u/b.jpg"), hd=hd)
    assert sum(fake.hits.values()) == 0


@pytest.mark.parametrize("key", ["", "   ", 123, None, b"u/a.jpg"])
async def test_keys_must_be_non_empty_strings(fake: FakeService, key: Any) -> None:
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.create_image_swap(key, "u/b.jpg")
        with pytest.raises(InvalidInputError):
            await mc.create_image_swap("u/a.jpg", key)
        with pytest.raises(InvalidInputError):
            await mc.create_face_detection(key)
        with pytest.raises(InvalidInputError):
            await mc.get_access_url(key)
        with pytest.raises(InvalidInputError):
            await mc.get_upload_url(key)
        with pytest.raises(InvalidInputError):
            await mc.create_multi_image_swap(5, {"u/face.jpg": key})
    assert sum(fake.hits.values()) == 0


# --- item 21: a stream that never yields is bounded ---------------------------------------------


async def _silent() -> AsyncIterator[bytes]:
    await anyio.sleep_forever()
    yield b""


async def _head_then_silent() -> AsyncIterator[bytes]:
    yield JPEG[:64]
    await anyio.sleep_forever()


@pytest.mark.parametrize("chunks", [_silent, _head_then_silent])
async def test_silent_stream_is_bounded_by_the_stall_timeout(
    fake: FakeService, chunks: Any
) -> None:
    _serve_upload_url(fake)

    async def put(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    fake.route("PUT", "/storage/o.jpg", put)
    async with fake.client(stall_timeout=0.3) as mc:
        with anyio.fail_after(10), pytest.raises(MioCreateTimeoutError):
            await mc.upload(StreamSource(chunks(), 5000, "a.jpg"))


# --- item 22: a short download without Content-Length is not saved -----------------------------


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n" + JPEG[:500],
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ],
)
async def test_short_download_is_not_saved(tmp_path: Path, fake: FakeService, reply: bytes) -> None:
    async with RawServer(reply) as storage:
        url = f"{storage.url}/r.jpg?{signed_query()}"
        _serve_detail(
            fake, {"id": 5, "status": 0, "additional_data": image_result(url, size=len(JPEG))}
        )
        async with fake.client() as mc:
            info = await mc.get_task(5)
            assert isinstance(info.result, ImageSwapResult)
            with pytest.raises(MioCreateError):
                await info.result.download(tmp_path / "out.jpg")
    assert list(tmp_path.iterdir()) == []


# --- item 27: only a real credentials failure is an AuthenticationError ------------------------


async def test_token_expiring_twice_in_one_call_is_not_an_auth_error(
    emulator: Emulator, tmp_path: Path
) -> None:
    async with emulator.client() as mc:
        key = await mc.upload(write_sample_photo(tmp_path / "p.jpg"))
        emulator.scenario("task_detail", code=401, count=2)
        task = await mc.create_image_swap(key, key)
        info = await mc.get_task(task)
    assert info.id == task.id


# --- item 2: a file changed during its upload fails ---------------------------------------------


async def test_file_rewritten_in_place_during_upload_fails(
    fake: FakeService, tmp_path: Path
) -> None:
    path = write_sample_video(tmp_path / "v.mp4", duration=1.0, size=32 << 20)
    size = path.stat().st_size
    _serve_upload_url(fake)
    received: list[int] = []
    rewritten = anyio.Event()

    async def slow_put(request: web.Request) -> web.Response:
        total = 0
        while True:
            chunk = await request.content.read(256 << 10)
            if not chunk:
                break
            total += len(chunk)
            if total >= (1 << 20) and not rewritten.is_set():
                with open(path, "r+b") as handle:  # same size, other bytes
                    handle.seek(size // 2)
                    handle.write(b"\x07" * 4096)
                os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))
                rewritten.set()
            await anyio.sleep(0.005)
        received.append(total)
        return web.Response()

    fake.route("PUT", "/storage/o.jpg", slow_put)
    async with fake.client() as mc:
        with anyio.fail_after(60), pytest.raises(InvalidInputError):
            await mc.upload(path)
    assert rewritten.is_set()
    assert size not in received  # storage never got a whole (mixed) body


async def test_file_replaced_between_checks_and_put_is_not_sent_unchecked(
    fake: FakeService, tmp_path: Path
) -> None:
    path = write_sample_photo(tmp_path / "p.jpg")
    replacement = tmp_path / "other"
    text = b"plain text, not an image " * (path.stat().st_size // 25 + 1)
    replacement.write_bytes(text[: path.stat().st_size])  # the same size: only the bytes differ
    bodies: list[bytes] = []

    async def upload_url(request: web.Request) -> web.Response:
        await request.read()
        os.replace(replacement, path)  # between the local checks and the PUT
        return envelope({"upload_url": _storage(fake), "key": "u/o.jpg"})

    async def put(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response()

    fake.api(Operation.UPLOAD_URL, upload_url)
    fake.route("PUT", "/storage/o.jpg", put)
    async with fake.client() as mc:
        with contextlib.suppress(InvalidInputError):
            await mc.upload(path)
    assert all(not body.startswith(b"plain text") for body in bodies)


# --- item 24 through the client: an M4A named .mp4 is refused before any request ---------------


async def test_m4a_named_mp4_is_refused(fake: FakeService) -> None:
    m4a = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A isommp42" + b"\x00" * 500
    async with fake.client() as mc:
        with pytest.raises(UnsupportedFormatError):
            await mc.upload(m4a, file_name="song.mp4")
    assert sum(fake.hits.values()) == 0


# --- item 18 through the client: a GCS-signed URL's signature never shows ----------------------


async def test_gcs_signature_not_in_errors(fake: FakeService, tmp_path: Path) -> None:
    async def denied(request: web.Request) -> web.Response:
        return web.Response(status=403, body=b"<Error><Code>AccessDenied</Code></Error>")

    fake.route("GET", "/storage/g.jpg", denied)
    url = (
        f"{fake.url}/storage/g.jpg?X-Goog-Algorithm=GOOG4-RSA-SHA256"
        "&X-Goog-Credential=svc%40p.iam%2F20260101&X-Goog-Signature=goog5ecret77"
    )
    async with fake.client() as mc:
        with pytest.raises(StorageError) as caught:
            await mc.download(url, tmp_path / "g.jpg")
    assert "goog5ecret77" not in str(caught.value)
    assert "svc%40p.iam" not in str(caught.value)
