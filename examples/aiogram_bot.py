"""A Telegram bot (aiogram 3) that swaps your face into the photos you send it.

Send a photo with the caption ``face`` to set your face; every other photo comes back with it
swapped in (or with the face of ``MIOCREATE_FACE``, a file, until you set yours). One MioCreate
client serves every chat; each face is uploaded once and uploaded again if the service has
forgotten it (code 702: uploaded files do not live forever).

Every swap costs the bot's owner credits, so strangers are kept in check: each user gets
``BOT_DAILY_SWAPS`` swaps a day (default 10), ``BOT_ALLOWED_USERS`` (comma-separated Telegram
user ids) limits the bot to those users, and photos over ``BOT_MAX_MB`` (default 10) are refused
before they are downloaded.

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
import time
from dataclasses import dataclass, field

from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import CommandStart
from aiogram.types import BufferedInputFile, Message, PhotoSize

from miocreate_async import Key, KeyNotFoundError, MioCreate, MioCreateError

__all__ = ["Allowance", "UserFace", "check_photo", "main", "router", "swap_photo"]

router = Router(name="face-swap")


@dataclass
class UserFace:
    """A user's face: its bytes, and its key once uploaded (uploaded again when forgotten)."""

    data: bytes
    key: Key | None = None


@dataclass
class Allowance:
    """At most ``per_day`` swaps per user in 24 hours; only ``allowed`` users if that is set."""

    per_day: int = 10
    allowed: frozenset[int] | None = None
    used: dict[int, list[float]] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Allowance:
        users = os.environ.get("BOT_ALLOWED_USERS", "").replace(" ", "")
        return cls(
            per_day=int(os.environ.get("BOT_DAILY_SWAPS", "10")),
            allowed=frozenset(int(user) for user in users.split(",")) if users else None,
        )

    def refusal(self, user_id: int) -> str | None:
        """Why ``user_id`` may not swap now, or None (and the swap is counted)."""
        if self.allowed is not None and user_id not in self.allowed:
            return "Sorry, this bot is private."
        now = time.time()
        recent = [at for at in self.used.get(user_id, []) if now - at < 86400]
        if len(recent) >= self.per_day:
            return f"You have used your {self.per_day} swaps for today. Come back tomorrow!"
        self.used[user_id] = [*recent, now]
        return None


#: Faces by Telegram user id, and the swaps they used (in memory: an example, not a database).
faces: dict[int, UserFace] = {}
allowance = Allowance.from_env()
MAX_BYTES = int(float(os.environ.get("BOT_MAX_MB", "10")) * 1024 * 1024)


async def swap_photo(client: MioCreate, photo: bytes, face: UserFace, *, hd: bool = False) -> bytes:
    """Swap ``face`` into ``photo``; the swapped image's bytes, with no temporary file."""
    if face.key is None:
        face.key = Key(await client.upload(face.data, file_name="face.jpg"))
    try:
        result = await client.swap_image(photo, face.key, hd=hd, timeout=300)
    except KeyNotFoundError:
        # The service forgot the uploaded face (702): upload it again, once, and retry.
        face.key = Key(await client.upload(face.data, file_name="face.jpg"))
        result = await client.swap_image(photo, face.key, hd=hd, timeout=300)
    return await result.read()


def check_photo(photo: PhotoSize, max_bytes: int = MAX_BYTES) -> str | None:
    """Why a photo is refused before downloading it, or None. (Telegram photos are JPEGs.)"""
    if photo.file_size is None or photo.file_size > max_bytes:
        return f"That photo is too large: at most {max_bytes // (1024 * 1024)} MB, please."
    return None


async def _photo_bytes(message: Message, bot: Bot) -> bytes | None:
    if not message.photo:
        return None
    largest = message.photo[-1]
    refusal = check_photo(largest)
    if refusal is not None:
        await message.reply(refusal)
        return None
    data = await bot.download(largest)
    return data.read() if data is not None else None


@router.message(CommandStart())
async def start(message: Message) -> None:
    await message.answer(
        "Send me a photo of your face with the caption 'face', then any photo: "
        "I'll swap your face into it."
    )


@router.message(F.photo, F.caption.lower().in_({"face", "/face"}))
async def set_face(message: Message, bot: Bot, miocreate: MioCreate) -> None:
    if message.from_user is None:
        return
    data = await _photo_bytes(message, bot)
    if data is None:
        return
    face = UserFace(data)
    try:
        face.key = Key(await miocreate.upload(data, file_name="face.jpg"))
    except MioCreateError as error:
        await message.reply(f"That face didn't work: {error.message}")
        return
    faces[message.from_user.id] = face
    await message.reply("Got your face. Now send me photos!")


@router.message(F.photo)
async def swap(message: Message, bot: Bot, miocreate: MioCreate) -> None:
    user = message.from_user
    if user is None:
        return
    face = faces.get(user.id)
    if face is None and os.environ.get("MIOCREATE_FACE"):
        with open(os.environ["MIOCREATE_FACE"], "rb") as file:
            face = faces[user.id] = UserFace(file.read())
    if face is None:
        await message.reply("First send me a photo of your face with the caption 'face'.")
        return
    refusal = allowance.refusal(user.id)
    if refusal is not None:
        await message.reply(refusal)
        return
    data = await _photo_bytes(message, bot)
    if data is None:
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
