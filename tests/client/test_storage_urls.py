"""Presigned storage URLs go on the wire byte for byte as given (a store checks the signature
over the exact encoding), the Content-Type a URL signs is sent, and names saved from a URL are
decoded. A small local server records what it received."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web

from miocreate_async import MioCreate
from miocreate_async._config import Config
from miocreate_async._models import UploadTarget
from miocreate_async._retry import RetryPolicy
from miocreate_async._transfer._inputs import prepare_upload
from miocreate_async._transfer._put import put_object

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\0" * 2000
# An awkward key as third-party S3 stores sign it: escaped slash, equals and parentheses.
AWKWARD = (
    "/bucket/in%2Fputs/photo%3D%281%29.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIA%2F20261204%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20261204T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders={signed}"
    "&X-Amz-Signature=0123abcd"
)


class Store:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.seen.append((request.method, request.raw_path, request.headers.get("Content-Type")))
        if request.method == "PUT":
            return web.Response(status=200)
        return web.Response(body=JPEG, content_type="image/jpeg")


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    store = Store()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", store.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    store.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield store
    finally:
        await runner.cleanup()


async def put(url: str) -> None:
    upload = await prepare_upload(JPEG, file_name="photo=(1).jpg")

    async def target() -> UploadTarget:
        return UploadTarget(upload_url=url, key="in/puts/photo=(1).jpg")

    async with aiohttp.ClientSession() as http:
        await put_object(
            http,
            upload,
            get_target=target,
            config=Config(retry=RetryPolicy(attempts=1)),
            limiter=anyio.CapacityLimiter(1),
        )


@pytest.mark.parametrize("signed", ["host", "content-type%3Bhost"])
async def test_an_upload_url_is_sent_byte_for_byte_with_its_content_type(
    store: Store, signed: str
) -> None:
    path = AWKWARD.format(signed=signed)
    await put(store.url + path)
    assert store.seen == [("PUT", path, "image/jpeg")]


async def test_a_download_url_is_sent_byte_for_byte_and_saved_under_its_decoded_name(
    store: Store, tmp_path: Path
) -> None:
    path = AWKWARD.format(signed="host")
    async with MioCreate(token="t", base_url=store.url) as mc:
        saved = await mc.download(store.url + path, tmp_path)
    assert store.seen[0][:2] == ("GET", path)
    assert saved == tmp_path / "photo=(1).jpg"
    assert saved.read_bytes() == JPEG


async def test_a_name_decoded_to_a_separator_stays_in_the_folder(
    store: Store, tmp_path: Path
) -> None:
    async with MioCreate(token="t", base_url=store.url) as mc:
        saved = await mc.download(f"{store.url}/x/..%2F..%2Fescape%20me.jpg?sig=1", tmp_path)
    assert saved.parent == tmp_path
    assert saved.name == ".._.._escape me.jpg"
