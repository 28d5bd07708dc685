"""A Telegram bot (aiogram 3) that swaps your face into the photos you send it.

Send a photo with the caption ``face`` to set your face; every other photo comes back with it
swapped in (or with the face of ``MIOCREATE_FACE``, a file, until you set yours). One MioCreate
client serves every chat; each uploaded face is kept by its key, so it is uploaded once.

    export TELEGRAM_BOT_TOKEN=...
    export MIOCREATE_CLIENT_ID=... MIOCREATE_CLIENT_SECRET=...
    # or, against `miocreate emulator --port 8765`: MIOCREATE_BASE_URL=http://127.0.0.1:8765
    # MIOCREATE_CLIENT_ID=emulator-client-id MIOCREATE_CLIENT_SECRET=emulator-client-secret
    python examples/aiogram_bot.py

The swap itself is ``swap_photo``, a plain async function with no Telegram in it.
Needs: pip install 'miocreate-async' aiogram
"""

from __future__ import annotations

import asyncio
import os
import tempfile

import anyio
from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import CommandStart
from aiogram.types import BufferedInputFile, Message

from miocreate_async import Key, MediaInput, MioCreate, MioCreateError

__all__ = ["main", "router", "swap_photo"]

router = Router(name="face-swap")
#: The uploaded face of each Telegram user, by user id (in memory: an example, not a database).
faces: dict[int, Key] = {}


async def swap_photo(
    client: MioCreate, photo: bytes, face: MediaInput, *, hd: bool = False
) -> bytes:
    """Swap ``face`` into ``photo``; the swapped image's bytes."""
    result = await client.swap_image(photo, face, hd=hd, timeout=300)
    with tempfile.TemporaryDirectory(prefix="miocreate-bot-") as folder:
        path = await result.download(folder)
        return await anyio.Path(path).read_bytes()


async def _photo_bytes(message: Message, bot: Bot) -> bytes | None:
    if not message.photo:
        return None
    data = await bot.download(message.photo[-1])  # the largest size
    return data.read() if data is not None else None


@router.message(CommandStart())
async def start(message: Message) -> None:
    await message.answer(
        "Send me a photo of your face with the caption 'face', then any photo: "
        "I'll swap your face into it."
    )


@router.message(F.photo, F.caption.lower().in_({"face", "/face"}))
async def set_face(message: Message, bot: Bot, miocreate: MioCreate) -> None:
    data = await _photo_bytes(message, bot)
    if data is None or message.from_user is None:
        return
    try:
        faces[message.from_user.id] = Key(await miocreate.upload(data, file_name="face.jpg"))
    except MioCreateError as error:
        await message.reply(f"That face didn't work: {error.message}")
        return
    await message.reply("Got your face. Now send me photos!")


@router.message(F.photo)
async def swap(message: Message, bot: Bot, miocreate: MioCreate) -> None:
    user = message.from_user
    face: MediaInput | None = faces.get(user.id) if user else None
    face = face or os.environ.get("MIOCREATE_FACE")
    data = await _photo_bytes(message, bot)
    if data is None:
        return
    if face is None:
        await message.reply("First send me a photo of your face with the caption 'face'.")
        return
    note = await message.reply("Swapping...")
    try:
        swapped = await swap_photo(miocreate, data, face)
    except MioCreateError as error:
        await note.edit_text(f"Sorry, that failed: {error.message}")
        return
    await message.reply_photo(BufferedInputFile(swapped, filename="swapped.jpg"))
    await note.delete()


async def main() -> None:
    bot = Bot(os.environ["TELEGRAM_BOT_TOKEN"])
    async with MioCreate() as client:
        dispatcher = Dispatcher(miocreate=client)  # handlers receive it as `miocreate`
        dispatcher.include_router(router)
        await dispatcher.start_polling(bot)


if __name__ == "__main__":
    asyncio.run(main())
