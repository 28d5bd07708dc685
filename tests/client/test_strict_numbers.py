"""Integer and number fields are strict: a JSON ``true`` is no 1 (nor 1.0), a fraction is no
integer, on the fast generated decoder and on cattrs alike, and in the envelope's ``code``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from miocreate_async import MioCreate, ProtocolError
from miocreate_async._converter import structure
from miocreate_async._models import ImageSwapResult, VideoSwapResult
from miocreate_async._wire import TaskDetail

VIDEO = {"size": 10, "duration": 1.5, "merge_key": "a.mp4", "merge_url": "https://x/a.mp4"}
IMAGE = {"size": 10, "width": 2, "height": 2, "merge_key": "a.jpg", "merge_url": "https://x/a"}
BAD = [
    (VideoSwapResult, {**VIDEO, "duration": True}),
    (VideoSwapResult, {**VIDEO, "size": True}),
    (VideoSwapResult, {**VIDEO, "size": 2.5}),
    (ImageSwapResult, {**IMAGE, "width": False}),
    (ImageSwapResult, {**IMAGE, "thumbnail_width": True}),
    (TaskDetail, {"id": 1, "status": True, "message": ""}),
    (TaskDetail, {"id": True, "status": 0, "message": ""}),
]


@pytest.mark.parametrize(("cls", "data"), BAD)
def test_bools_and_fractions_are_refused(cls: type[Any], data: Any) -> None:
    with pytest.raises(ProtocolError):
        structure(data, cls)


def test_numbers_as_the_page_sends_them_are_taken() -> None:
    assert structure({**VIDEO, "duration": "1.5", "size": "10"}, VideoSwapResult).duration == 1.5
    assert structure({**VIDEO, "duration": 2}, VideoSwapResult).duration == 2.0


@pytest.fixture
async def lying_api() -> AsyncIterator[str]:
    """An API whose every reply has ``"code": true``."""

    async def reply(request: web.Request) -> web.Response:
        return web.json_response({"code": True, "message": "ok", "data": {"id": 1}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", reply)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.anyio
@pytest.mark.e2e
async def test_an_envelope_code_true_is_a_protocol_error(lying_api: str) -> None:
    async with MioCreate(token="t", base_url=lying_api) as mc:
        with pytest.raises(ProtocolError, match="bad envelope code"):
            await mc.get_access_url("folder/a.jpg")
