"""The examples are safe with their users' input, driven by their real frameworks against local
servers: the aiogram bot against a fake Bot API server (``make_bot(token, api_url)``), the
FastAPI app over ASGI. Users never see an error's own text; allowances count only swaps made;
the web app names the wrong file and refuses a too-large upload while it streams."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from example_programs import example

from miocreate_async import MioCreate
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio

TOKEN = "42:test-token"
USER = 7
LEAK = "http://10.0.0.5/internal-secret"  # what an error's own text may hold


class FakeTelegram:
    """A Bot API server: records every method called, serves files by id."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.files: dict[str, bytes] = {}
        self.url = ""
        self._ids = itertools.count(100)

    def texts(self) -> list[str]:
        return [
            str(p.get("text", "")) for m, p in self.calls if m in ("sendMessage", "editMessageText")
        ]

    def sent_photos(self) -> int:
        return sum(method == "sendPhoto" for method, _ in self.calls)

    def message(self, **extra: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": USER, "type": "private"},
            **extra,
        }

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        form = await request.post()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        self.calls.append((method, params))
        result: Any = True
        if method in ("sendMessage", "editMessageText"):
            result = self.message(text=params.get("text", ""))
        elif method == "sendPhoto":
            result = self.message(
                photo=[{"file_id": "s", "file_unique_id": "s", "width": 1, "height": 1}]
            )
        elif method == "getFile":
            file_id = params["file_id"]
            result = {
                "file_id": file_id,
                "file_unique_id": file_id,
                "file_size": len(self.files[file_id]),
                "file_path": f"files/{file_id}",
            }
        return web.json_response({"ok": True, "result": result})

    async def file(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["file_id"]])


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    app = web.Application()
    app.router.add_post(f"/bot{TOKEN}/{{method}}", fake.api)
    app.router.add_get(f"/file/bot{TOKEN}/files/{{file_id}}", fake.file)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
        await runner.cleanup()


class Chat:
    """A user talking to the bot through the real aiogram dispatcher."""

    def __init__(self, telegram: FakeTelegram, client: MioCreate) -> None:
        from aiogram import Dispatcher

        aiogram_bot = example("aiogram_bot")
        self.telegram = telegram
        self.bot = aiogram_bot.make_bot(TOKEN, api_url=telegram.url)
        self.dispatcher = Dispatcher(miocreate=client)
        self.dispatcher.include_router(aiogram_bot.build_router())
        self._updates = itertools.count(1)

    async def send(self, **message: Any) -> None:
        data = {
            "update_id": next(self._updates),
            "message": self.telegram.message(
                **{"from": {"id": USER, "is_bot": False, "first_name": "U"}}, **message
            ),
        }
        from aiogram.types import Update

        update = Update.model_validate(data, context={"bot": self.bot})
        await self.dispatcher.feed_update(self.bot, update)

    def photo(self, data: bytes, size: int | None = None, **extra: Any) -> dict[str, Any]:
        file_id = f"f{len(self.telegram.files)}"
        self.telegram.files[file_id] = data
        size = len(data) if size is None else size
        shape = {"file_id": file_id, "file_unique_id": file_id, "width": 640, "height": 480}
        return {"photo": [{**shape, "file_size": size}], **extra}

    def document(self, data: bytes, name: str, mime: str, **extra: Any) -> dict[str, Any]:
        file_id = f"f{len(self.telegram.files)}"
        self.telegram.files[file_id] = data
        document = {"file_id": file_id, "file_unique_id": file_id, "file_name": name}
        return {"document": {**document, "mime_type": mime, "file_size": len(data)}, **extra}


@pytest.fixture
async def chat(
    telegram: FakeTelegram, client: MioCreate, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Chat]:
    aiogram_bot = example("aiogram_bot")
    monkeypatch.setattr(aiogram_bot, "faces", {})
    monkeypatch.setattr(aiogram_bot, "allowance", aiogram_bot.Allowance(per_day=2))
    chat = Chat(telegram, client)
    try:
        yield chat
    finally:
        await chat.bot.session.close()


async def test_refused_photos_and_failed_swaps_use_up_no_allowance(
    chat: Chat, telegram: FakeTelegram, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    photo = sample_photo.read_bytes()
    await chat.send(**chat.photo(sample_face.read_bytes(), caption="face"))
    assert telegram.texts()[-1] == "Got your face. Now send me photos!"

    for _ in range(4):  # too large: refused before download, not counted
        await chat.send(**chat.photo(photo, size=50 << 20))
    await chat.send(**chat.document(b"hello", "notes.txt", "text/plain"))  # not an image
    await chat.send(**chat.document(b"GIF89a" + b"\0" * 50, "a.gif", "image/gif"))
    emulator.scenario("image_swap", task_fail={"code": 602, "message": f"no face {LEAK}"})
    await chat.send(**chat.photo(photo))  # fails: given back
    assert telegram.texts()[-1] == "I couldn't find a face in that photo. Try another one?"
    await chat.send(**chat.photo(photo))
    await chat.send(**chat.document(photo, "holiday.jpg", "image/jpeg"))  # a photo sent as a file
    assert telegram.sent_photos() == 2
    await chat.send(**chat.photo(photo))  # the third swap made today
    assert "You have used your 2 swaps for today" in telegram.texts()[-1]
    assert telegram.sent_photos() == 2
    assert all(LEAK not in text and "10.0.0.5" not in text for text in telegram.texts())


@pytest.mark.parametrize("bot_name", ["aiogram_bot", "discord_bot"], ids=["aiogram", "discord"])
async def test_users_never_see_an_errors_own_text_and_failures_are_given_back(
    bot_name: str,
) -> None:
    bot = example(bot_name)
    from miocreate_async import NoFaceDetectedError, ServerError, UnsupportedFormatError

    errors = [
        ServerError(f"boom at {LEAK}", code=500),
        UnsupportedFormatError(LEAK),
        NoFaceDetectedError(LEAK, code=602),
    ]
    for error in errors:
        assert LEAK not in bot.user_message(error)
    allowance = bot.Allowance(per_day=1)
    assert allowance.refusal(1) is None
    allowance.refund(1)  # the swap failed
    assert allowance.refusal(1) is None


# --- the FastAPI app ---------------------------------------------------------------------------


async def post(emulator: Emulator, files: Any, **options: Any) -> httpx.Response:
    app = example("fastapi_app").create_app(emulator.client, **options)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        return await http.post("/swap", files=files)


async def test_the_web_app_names_the_wrong_file(emulator: Emulator, sample_photo: Path) -> None:
    files = {
        "photo": ("holiday.jpg", sample_photo.read_bytes(), "image/jpeg"),
        "face": ("x.txt", b"just some text", "text/plain"),
    }
    reply = await post(emulator, files)
    assert reply.status_code == 400
    assert reply.json()["message"].startswith("the face file 'x.txt'")
    files = {**files, "photo": ("notes.jpg", b"not a photo at all", "image/jpeg")}
    reply = await post(emulator, {**files, "face": ("me.jpg", sample_photo.read_bytes())})
    assert reply.status_code == 400
    assert reply.json()["message"].startswith("the photo file 'notes.jpg'")


async def test_the_web_app_refuses_a_too_large_upload_while_it_streams(
    emulator: Emulator, sample_photo: Path
) -> None:
    sent = 0
    total = 30 << 20

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            b'--b\r\nContent-Disposition: form-data; name="photo"; filename="big.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0"
        )
        while sent < total:
            chunk = b"\0" * (64 << 10)
            sent += len(chunk)
            yield chunk

    app = example("fastapi_app").create_app(emulator.client, max_upload_bytes=1 << 20)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        headers = {"Content-Type": "multipart/form-data; boundary=b"}
        reply = await http.post("/swap", content=body(), headers=headers)
        assert reply.status_code == 413
        assert sent < 4 << 20  # refused after about the limit, not after 30 MB
        declared = {**headers, "Content-Length": str(total)}
        reply = await http.post("/swap", content=b"\0" * 10, headers=declared)
        assert reply.status_code == 413  # the declared length alone is refused
    assert not emulator.ledger["uploads"]
