"""The examples, run against the emulator: the web app over ASGI, the bots' swap functions,
the batch script. (mypy --strict checks them with the rest of the project.)"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import httpx
import pytest
from PIL import Image

from miocreate_async import MioCreate
from miocreate_async.emulator import Emulator, write_sample_photo

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import aiogram_bot
import batch_folder
import fastapi_app

with warnings.catch_warnings():  # discord.py imports audioop, deprecated in Python 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord_bot

pytestmark = pytest.mark.anyio


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_fastapi_swaps_an_uploaded_photo(
    emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    clients: list[MioCreate] = []

    def make_client() -> MioCreate:
        clients.append(emulator.client())
        return clients[-1]

    app = fastapi_app.create_app(make_client)
    files = {
        "photo": ("photo.jpg", sample_photo.read_bytes(), "image/jpeg"),
        "face": ("face.png", sample_face.read_bytes(), "image/png"),
    }
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        reply = await http.post("/swap", files=files, data={"hd": "true"})
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("image/")
        assert image_of(reply.content).size == (640, 480)

        reply = await http.post("/swap/url", files=files)
        assert reply.status_code == 200, reply.text
        assert reply.json()["url"].startswith(emulator.url)

        bad = {**files, "photo": ("photo.jpg", b"not a photo at all", "image/jpeg")}
        reply = await http.post("/swap", files=bad)
        assert reply.status_code == 400
        assert reply.json()["error"] == "UnsupportedFormatError"
        assert len(clients) == 1  # opened once, in the lifespan
    assert clients[0].closed


async def test_the_app_is_configured_from_the_environment() -> None:
    # The module-level app builds its client only when it starts: importing needs no settings.
    assert fastapi_app.app.title == "Face swap"
    assert {"/swap", "/swap/url"} <= {
        getattr(route, "path", "") for route in fastapi_app.app.routes
    }


async def test_aiogram_swap_function(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    face = aiogram_bot.UserFace(sample_face.read_bytes())
    swapped = await aiogram_bot.swap_photo(client, sample_photo.read_bytes(), face)
    assert image_of(swapped).size == (640, 480)
    assert aiogram_bot.router.message.handlers  # the handlers are registered


async def test_discord_swap_function_and_command(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    face = discord_bot.UserFace(sample_face.read_bytes())
    swapped = await discord_bot.swap_attachment(client, sample_photo.read_bytes(), face)
    assert image_of(swapped).size == (640, 480)
    bot = discord_bot.FaceSwapBot(client)
    (command,) = bot.tree.get_commands()
    assert command.name == "swap"
    assert [p.name for p in getattr(command, "parameters", [])] == ["photo", "face", "hd"]


async def test_batch_script(client: MioCreate, tmp_path: Path, sample_face: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(4):
        write_sample_photo(folder / f"p{index}.jpg", seed=index)
    (folder / "broken.png").write_bytes(b"not an image")
    saved, failed = await batch_folder.swap_folder(
        client, batch_folder.media_in(folder), sample_face, tmp_path / "out", concurrency=3
    )
    assert sorted(path.name for path in saved) == [f"p{i}-swapped.jpg" for i in range(4)]
    assert [path.name for path, _ in failed] == ["broken.png"]
