"""Inputs given as http(s) URLs (a bot's Discord or Telegram attachment): streamed from the
source straight into the presigned PUT, with the source's Content-Length."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from miocreate_async import (
    ImageSwapResult,
    InvalidInputError,
    MioCreate,
    SourceNotFoundError,
)
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio


def uploads_by_key(emu: Emulator) -> dict[str, dict[str, object]]:
    return {upload["key"]: upload for upload in emu.ledger["uploads"]}


def upload_url_requests(emu: Emulator) -> int:
    return sum(r["operation"] == "upload_url" for r in emu.ledger["requests"])


@pytest.fixture
async def chunked_source() -> AsyncIterator[str]:
    """A server that sends a JPEG without Content-Length (chunked), and 404 for other paths."""

    async def photo(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"\xff\xd8\xff\xe0" + b"\0" * 1000)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/photo.jpg", photo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_url_is_streamed_into_an_upload(
    client: MioCreate, emulator: Emulator, sample_photo: Path
) -> None:
    key = await client.upload(sample_photo)
    url = await client.get_access_url(key)
    copy = await client.upload(url)
    uploads = uploads_by_key(emulator)
    assert copy != key
    assert uploads[copy]["sha256"] == uploads[key]["sha256"]
    assert uploads[copy]["file_name"] == Path(key).name


async def test_a_swap_takes_url_inputs(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    photo_url = await client.get_access_url(await client.upload(sample_photo))
    face_url = await client.get_access_url(await client.upload(sample_face))
    result = await client.swap_image(photo_url, face=face_url)
    assert isinstance(result, ImageSwapResult)


async def test_a_source_without_content_length_is_refused_before_any_upload(
    client: MioCreate, emulator: Emulator, chunked_source: str
) -> None:
    with pytest.raises(InvalidInputError, match="no Content-Length"):
        await client.upload(f"{chunked_source}/photo.jpg")
    with pytest.raises(SourceNotFoundError, match="HTTP 404"):
        await client.upload(f"{chunked_source}/missing.jpg")
    assert upload_url_requests(emulator) == 0
