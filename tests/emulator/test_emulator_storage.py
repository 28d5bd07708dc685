"""Presigned storage with S3 semantics: signatures, expiry, lengths, leaks, streamed GETs."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import RawApi

from miocreate_async._operations import Operation

pytestmark = pytest.mark.anyio


async def _target(api: RawApi, name: str = "photo.jpg") -> tuple[str, str]:
    data = await api.data(Operation.UPLOAD_URL, {"file_name": name})
    return data["upload_url"], data["key"]


async def _refusal(api: RawApi, method: str, url: str, **kwargs: object) -> tuple[int, str]:
    async with api.session.request(method, url, **kwargs) as reply:
        return reply.status, await reply.text()


async def test_upload_url_is_presigned(api: RawApi) -> None:
    url, key = await _target(api)
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert parts.path == "/_storage/" + key
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "1800"
    assert query["X-Amz-SignedHeaders"] == "host"
    assert query["X-Amz-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    assert len(query["X-Amz-Date"]) == 16
    assert query["X-Amz-Date"].endswith("Z")
    assert query["X-Amz-Credential"].endswith("/auto/s3/aws4_request")
    assert len(query["X-Amz-Signature"]) == 64


async def test_expired_put(api: RawApi, sample_photo: Path) -> None:
    url, _ = await _target(api)
    api.emulator.advance_clock(1801)
    status, body = await _refusal(api, "PUT", url, data=sample_photo.read_bytes())
    assert status == 403
    assert "<Code>AccessDenied</Code>" in body
    assert "Request has expired" in body


async def test_badly_signed_put(api: RawApi) -> None:
    url, _ = await _target(api)
    tampered = url.replace("X-Amz-Expires=1800", "X-Amz-Expires=3600")
    status, body = await _refusal(api, "PUT", tampered, data=b"\xff\xd8\xff")
    assert (status, "<Code>SignatureDoesNotMatch</Code>" in body) == (403, True)
    other_key = url.replace("/_storage/temporary/", "/_storage/temporary/x")
    assert (await _refusal(api, "PUT", other_key, data=b"x"))[0] == 403
    unsigned = url.split("?")[0]
    assert (await _refusal(api, "PUT", unsigned, data=b"x"))[0] == 403


async def test_chunked_put_refused(api: RawApi) -> None:
    url, _key = await _target(api)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"\xff\xd8\xff"
        yield b"rest"

    status, body = await _refusal(api, "PUT", url, data=chunks())
    assert (status, "<Code>NotImplemented</Code>" in body) == (501, True)
    assert api.emulator.ledger["uploads"][0]["status"] == "pending"


async def test_put_without_length_refused(api: RawApi) -> None:
    url, _ = await _target(api)
    # aiohttp always frames a body, so the request is written by hand: no length, no chunks.
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        reply = (await reader.read()).decode()
    finally:
        writer.close()
        await writer.wait_closed()
    assert reply.startswith("HTTP/1.1 411")
    assert "<Code>MissingContentLength</Code>" in reply


async def test_put_stored_and_leak_recorded(api: RawApi, sample_photo: Path) -> None:
    url, key = await _target(api)
    payload = sample_photo.read_bytes()
    headers = {"Authorization": f"Bearer {await api.token()}"}
    async with api.session.put(url, data=payload, headers=headers) as reply:
        assert reply.status == 200
        assert reply.headers["ETag"]
    ledger = api.emulator.ledger
    upload = ledger["uploads"][0]
    assert upload["key"] == key
    assert upload["file_name"] == "photo.jpg"
    assert upload["size"] == upload["content_length"] == len(payload)
    assert upload["sha256"] == hashlib.sha256(payload).hexdigest()
    assert upload["status"] == "stored"
    assert upload["media_type"] == "jpeg"
    [leak] = ledger["leaks"]
    assert leak["operation"] == "storage_put"
    assert leak["headers"]["Authorization"] == "[redacted]"


async def test_access_url_serves_and_expires(api: RawApi, sample_photo: Path) -> None:
    key = await api.upload(sample_photo)
    url = (await api.data(Operation.ACCESS_URL, {"key": key}))["url"]
    async with api.session.get(url) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "image/jpeg"
        assert int(reply.headers["Content-Length"]) == sample_photo.stat().st_size
        assert await reply.read() == sample_photo.read_bytes()
    assert api.emulator.ledger["leaks"] == []
    api.emulator.advance_clock(3601)
    status, body = await _refusal(api, "GET", url)
    assert status == 403
    assert "Request has expired" in body


async def test_put_url_does_not_sign_get(api: RawApi, sample_photo: Path) -> None:
    url, _ = await _target(api)
    async with api.session.put(url, data=sample_photo.read_bytes()) as reply:
        assert reply.status == 200
    status, body = await _refusal(api, "GET", url)
    assert status == 403
    assert "SignatureDoesNotMatch" in body
