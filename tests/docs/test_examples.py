"""The examples, run against the emulator: the web app over ASGI, the bots' swap functions,
the batch script. (mypy --strict checks them with the rest of the project.)"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from example_programs import EXAMPLES, example
from PIL import Image

from miocreate_async import Key, MioCreate
from miocreate_async.emulator import Emulator, write_sample_photo

pytestmark = pytest.mark.anyio

batch_folder = example("batch_folder")  # light: imported at once


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_fastapi_swaps_an_uploaded_photo(
    emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    fastapi_app = example("fastapi_app")
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
    fastapi_app = example("fastapi_app")
    # The module-level app builds its client only when it starts: importing needs no settings.
    assert fastapi_app.app.title == "Face swap"
    assert {"/swap", "/swap/url"} <= {
        getattr(route, "path", "") for route in fastapi_app.app.routes
    }


async def test_aiogram_swap_function(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    aiogram_bot = example("aiogram_bot")
    face = aiogram_bot.UserFace(sample_face.read_bytes())
    swapped = await aiogram_bot.swap_photo(client, sample_photo.read_bytes(), face)
    assert image_of(swapped).size == (640, 480)
    assert aiogram_bot.router.message.handlers  # the handlers are registered


async def test_discord_swap_function_and_command(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    discord_bot = example("discord_bot")
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


# --- the examples are safe to copy: the batch script checks its outputs before it submits; the
# bots check attachments before downloading them, upload a forgotten face again (702), keep
# strangers to a per-user allowance, and answer bytes without temporary files; the web app streams
# the result and maps "no face" to 422.


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        return width, height


def tasks_on(emulator: Emulator) -> int:
    return len(emulator.ledger["tasks"])


async def test_batch_script_run_again_pays_nothing_and_does_not_crash(
    client: MioCreate,
    emulator: Emulator,
    tmp_path: Path,
    sample_face: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, output = tmp_path / "photos", tmp_path / "out"
    folder.mkdir()
    for index in range(4):
        write_sample_photo(folder / f"p{index}.jpg", seed=index)
    inputs = batch_folder.media_in(folder)
    saved, failed = await batch_folder.swap_folder(client, inputs, sample_face, output)
    assert len(saved) == 4
    assert not failed
    paid = tasks_on(emulator)

    write_sample_photo(folder / "p9.jpg", seed=9)  # one new photo since the first run
    saved, failed = await batch_folder.swap_folder(
        client, batch_folder.media_in(folder), sample_face, output
    )

    assert [path.name for path in saved] == ["p9-swapped.jpg"]
    assert not failed
    assert tasks_on(emulator) == paid + 1  # only the new photo was submitted
    assert capsys.readouterr().out.count("skipped") == 4


async def test_batch_script_overwrite_redoes_every_input(
    client: MioCreate, emulator: Emulator, tmp_path: Path, sample_face: Path
) -> None:
    folder, output = tmp_path / "photos", tmp_path / "out"
    folder.mkdir()
    write_sample_photo(folder / "p0.jpg")
    await batch_folder.swap_folder(client, [folder / "p0.jpg"], sample_face, output)
    saved, failed = await batch_folder.swap_folder(
        client, [folder / "p0.jpg"], sample_face, output, overwrite=True
    )
    assert [path.name for path in saved] == ["p0-swapped.jpg"]
    assert not failed
    assert tasks_on(emulator) == 2


@pytest.mark.parametrize("bot_name", ["aiogram_bot", "discord_bot"], ids=["aiogram", "discord"])
async def test_bots_upload_a_forgotten_face_again(
    bot_name: str,
    client: MioCreate,
    emulator: Emulator,
    sample_photo: Path,
    sample_face: Path,
) -> None:
    bot = example(bot_name)
    swap = getattr(bot, "swap_photo", None) or getattr(bot, "swap_attachment")  # noqa: B009
    face = getattr(bot, "UserFace")(sample_face.read_bytes())  # noqa: B009
    swapped = await swap(client, sample_photo.read_bytes(), face)
    assert size_of(swapped) == (640, 480)
    first_key = face.key
    assert isinstance(first_key, Key)

    # The service no longer knows the uploaded face: code 702 on the next swap.
    emulator.scenario("image_swap", code=702, count=1)
    swapped = await swap(client, sample_photo.read_bytes(), face)

    assert size_of(swapped) == (640, 480)
    assert face.key != first_key  # uploaded again, once
    face_uploads = [u for u in emulator.ledger["uploads"] if u["file_name"] == "face.jpg"]
    assert len(face_uploads) == 2


@pytest.mark.parametrize("bot_name", ["aiogram_bot", "discord_bot"], ids=["aiogram", "discord"])
async def test_bots_keep_strangers_to_an_allowance(bot_name: str) -> None:
    bot = example(bot_name)
    allowance = getattr(bot, "Allowance")(per_day=2)  # noqa: B009
    assert allowance.refusal(1) is None
    assert allowance.refusal(1) is None
    assert allowance.refusal(1) is not None  # the third swap of the day is refused
    assert allowance.refusal(2) is None  # per user
    private = getattr(bot, "Allowance")(per_day=5, allowed=frozenset({7}))  # noqa: B009
    assert private.refusal(8) is not None
    assert private.refusal(7) is None


async def test_bots_check_attachments_before_downloading() -> None:
    aiogram_bot = example("aiogram_bot")
    discord_bot = example("discord_bot")
    from aiogram.types import PhotoSize

    big = PhotoSize(file_id="a", file_unique_id="b", width=9000, height=9000, file_size=50 << 20)
    small = PhotoSize(file_id="a", file_unique_id="b", width=90, height=90, file_size=50_000)
    assert aiogram_bot.check_photo(big) is not None
    assert aiogram_bot.check_photo(small) is None

    assert discord_bot.check_attachment("image/png", 50_000) is None
    assert discord_bot.check_attachment("image/jpeg; charset=binary", 50_000) is None
    assert discord_bot.check_attachment("application/zip", 50_000) is not None
    assert discord_bot.check_attachment(None, 50_000) is not None
    assert discord_bot.check_attachment("image/png", 50 << 20) is not None


async def test_fastapi_streams_the_result_and_maps_no_face_to_422(
    emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    fastapi_app = example("fastapi_app")
    app = fastapi_app.create_app(emulator.client)
    files = {
        "photo": ("photo.jpg", sample_photo.read_bytes(), "image/jpeg"),
        "face": ("face.png", sample_face.read_bytes(), "image/png"),
    }
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        reply = await http.post("/swap", files=files)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "image/jpeg"
        assert size_of(reply.content) == (640, 480)

        emulator.scenario("image_swap", task_fail={"code": 602, "message": "No face detected"})
        reply = await http.post("/swap", files=files)
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"] == "NoFaceDetectedError"
        assert reply.json()["code"] == 602


async def test_the_examples_need_no_temporary_folder() -> None:
    for name in ("aiogram_bot", "discord_bot", "fastapi_app"):
        source = (EXAMPLES / f"{name}.py").read_text()
        assert "tempfile" not in source
        assert "mkdtemp" not in source
