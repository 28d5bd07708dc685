"""A Telegram bot (aiogram 3) that swaps your face into the photos you send it.

Send a photo with the caption ``face`` to set your face; every other photo comes back with it
swapped in (or with the face of ``MIOCREATE_FACE``, a file, until you set yours). One MioCreate
client serves every chat; each face is uploaded once and uploaded again if the service has
forgotten it (code 702: uploaded files do not live forever).

Every swap costs the bot's owner credits, so strangers are kept in check: each user gets
``BOT_DAILY_SWAPS`` swaps a day (default 10), ``BOT_ALLOWED_USERS`` (comma-separated Telegram
user ids) limits the bot to those users, and photos over ``BOT_MAX_MB`` (default 10) are refused
before they are downloaded. A swap counts against the allowance only once its photo passed these
checks, and is given back when it fails. Photos sent as files (JPG, PNG or WEBP documents) are
taken too. Users are told what went wrong in a fixed sentence per kind of error, never the
error's own text (it may name internal hosts); the error itself goes to the bot's log.

``TELEGRAM_API_URL`` points the bot at another Bot API server (a local one, or a test's fake).

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
import logging
import os
from dataclasses import dataclass, field

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import CommandStart
from aiogram.types import BufferedInputFile, Document, Message, PhotoSize

from miocreate_async import Allowance as KeyAllowance
from miocreate_async import (
    ContentPolicyError,
    Fairness,
    InsufficientCreditsError,
    InvalidInputError,
    Key,
    KeyLimits,
    KeyNotFoundError,
    MioCreate,
    MioCreateError,
    MultipleFacesError,
    NoFaceDetectedError,
    RequestQuotaError,
)

__all__ = [
    "Allowance",
    "UserFace",
    "build_router",
    "check_document",
    "check_photo",
    "main",
    "make_bot",
    "router",
    "swap_photo",
    "user_message",
]

logger = logging.getLogger("aiogram_bot")

#: Images taken when sent as files (Telegram's own photos are always JPEGs).
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})


@dataclass
class UserFace:
    """A user's face: its bytes, and its key once uploaded (uploaded again when forgotten)."""

    data: bytes
    key: Key | None = None


@dataclass
class Allowance:
    """At most ``per_day`` swaps per user in 24 hours; only ``allowed`` users if that is set.

    The counting is the library's per-key ``Allowance`` (the one ``Fairness`` uses)."""

    per_day: int = 10
    allowed: frozenset[int] | None = None
    swaps: KeyAllowance = field(init=False)

    def __post_init__(self) -> None:
        self.swaps = KeyAllowance(self.per_day, window=24 * 3600)

    @classmethod
    def from_env(cls) -> Allowance:
        users = os.environ.get("BOT_ALLOWED_USERS", "").replace(" ", "")
        return cls(
            per_day=int(os.environ.get("BOT_DAILY_SWAPS", "10")),
            allowed=frozenset(int(user) for user in users.split(",")) if users else None,
        )

    def admits(self, user_id: int) -> bool:
        """Whether ``user_id`` may use the bot at all (nothing is counted)."""
        return self.allowed is None or user_id in self.allowed

    def refusal(self, user_id: int) -> str | None:
        """Why ``user_id`` may not swap now, or None (and the swap is counted: ``refund`` it
        if it fails)."""
        if self.allowed is not None and user_id not in self.allowed:
            return "Sorry, this bot is private."
        if not self.swaps.take(str(user_id)):
            return f"You have used your {self.per_day} swaps for today. Come back tomorrow!"
        return None

    def refund(self, user_id: int) -> None:
        """Give back the swap last counted for ``user_id`` (it failed)."""
        self.swaps.give_back(str(user_id))


#: Faces by Telegram user id, and the swaps they used (in memory: an example, not a database).
faces: dict[int, UserFace] = {}
allowance = Allowance.from_env()
MAX_BYTES = int(float(os.environ.get("BOT_MAX_MB", "10")) * 1024 * 1024)
#: One client serves every user: at most 2 swaps of one user at once, 8 in all (the others
#: wait their turn, each user's first), per the guide "Spend and fairness".
FAIRNESS = Fairness(slots=8, per_key=KeyLimits(concurrency=2))


async def swap_photo(
    client: MioCreate, photo: bytes, face: UserFace, *, hd: bool = False, key: str | None = None
) -> bytes:
    """Swap ``face`` into ``photo``; the swapped image's bytes, with no temporary file.

    ``key`` (the user) puts the swap under the client's per-user limits (``FAIRNESS``)."""
    if face.key is None:
        face.key = Key(await client.upload(face.data, file_name="face.jpg"))
    try:
        result = await client.swap_image(photo, face.key, hd=hd, timeout=300, key=key)
    except KeyNotFoundError:
        # The service forgot the uploaded face (702): upload it again, once, and retry.
        face.key = Key(await client.upload(face.data, file_name="face.jpg"))
        result = await client.swap_image(photo, face.key, hd=hd, timeout=300, key=key)
    return await result.read()


def check_photo(photo: PhotoSize, max_bytes: int = MAX_BYTES) -> str | None:
    """Why a photo is refused before downloading it, or None. (Telegram photos are JPEGs.)"""
    if photo.file_size is None or photo.file_size > max_bytes:
        return f"That photo is too large: at most {max_bytes // (1024 * 1024)} MB, please."
    return None


def check_document(document: Document, max_bytes: int = MAX_BYTES) -> str | None:
    """Why a photo sent as a file is refused before downloading it, or None."""
    if document.mime_type not in IMAGE_TYPES:
        return "Please send a JPG, PNG or WEBP image."
    if document.file_size is None or document.file_size > max_bytes:
        return f"That photo is too large: at most {max_bytes // (1024 * 1024)} MB, please."
    return None


#: What users are told, by kind of error: never ``error.message`` (it may hold internal URLs).
_USER_MESSAGES: list[tuple[type[MioCreateError] | tuple[type[MioCreateError], ...], str]] = [
    (NoFaceDetectedError, "I couldn't find a face in that photo. Try another one?"),
    (MultipleFacesError, "That photo has several faces: send one with a single face, please."),
    (ContentPolicyError, "Sorry, that photo can't be processed."),
    (InvalidInputError, "That file isn't a photo I can use: send a JPG, PNG or WEBP image."),
    ((InsufficientCreditsError, RequestQuotaError), "The bot is busy right now. Try again later!"),
]


def user_message(error: MioCreateError) -> str:
    """The sentence a user sees for ``error``: a fixed one per kind of error."""
    for kinds, text in _USER_MESSAGES:
        if isinstance(error, kinds):
            return text
    return "Sorry, something went wrong. Please try again later."


async def _image_bytes(message: Message, bot: Bot) -> bytes | None:
    """The image a message carries (a photo, or an image sent as a file), checked before it is
    downloaded; None (and the user told why) when there is none to use."""
    item: PhotoSize | Document
    if message.photo:
        item = message.photo[-1]
        refusal = check_photo(item)
    elif message.document:
        item = message.document
        refusal = check_document(item)
    else:
        return None
    if refusal is not None:
        await message.reply(refusal)
        return None
    data = await bot.download(item)
    return data.read() if data is not None else None


async def start(message: Message) -> None:
    await message.answer(
        "Send me a photo of your face with the caption 'face', then any photo: "
        "I'll swap your face into it."
    )


async def set_face(message: Message, bot: Bot, miocreate: MioCreate) -> None:
    if message.from_user is None or not allowance.admits(message.from_user.id):
        return
    data = await _image_bytes(message, bot)
    if data is None:
        return
    face = UserFace(data)
    try:
        face.key = Key(await miocreate.upload(data, file_name="face.jpg"))
    except MioCreateError as error:
        logger.warning("a face was refused: %r", error)
        await message.reply(f"That face didn't work. {user_message(error)}")
        return
    faces[message.from_user.id] = face
    await message.reply("Got your face. Now send me photos!")


async def swap(message: Message, bot: Bot, miocreate: MioCreate) -> None:
    user = message.from_user
    if user is None:
        return
    if not allowance.admits(user.id):
        await message.reply("Sorry, this bot is private.")
        return
    face = faces.get(user.id)
    if face is None and os.environ.get("MIOCREATE_FACE"):
        with open(os.environ["MIOCREATE_FACE"], "rb") as file:
            face = faces[user.id] = UserFace(file.read())
    if face is None:
        await message.reply("First send me a photo of your face with the caption 'face'.")
        return
    data = await _image_bytes(message, bot)
    if data is None:
        return  # refused before download: not counted
    refusal = allowance.refusal(user.id)
    if refusal is not None:
        await message.reply(refusal)
        return
    note = await message.reply("Swapping...")
    try:
        swapped = await swap_photo(miocreate, data, face, key=str(user.id))
    except MioCreateError as error:
        allowance.refund(user.id)  # only swaps made count
        logger.warning("a swap failed: %r", error)
        await note.edit_text(user_message(error))
        return
    await message.reply_photo(BufferedInputFile(swapped, filename="swapped.jpg"))
    await note.delete()


def build_router() -> Router:
    """The bot's handlers, on a new router (a router joins one dispatcher only)."""
    router = Router(name="face-swap")
    image = F.photo | F.document.mime_type.startswith("image/")
    router.message.register(start, CommandStart())
    router.message.register(set_face, image, F.caption.lower().in_({"face", "/face"}))
    router.message.register(swap, image)
    return router


router = build_router()


def make_bot(token: str, api_url: str | None = None) -> Bot:
    """A bot talking to Telegram, or to the Bot API server at ``api_url``."""
    if not api_url:
        return Bot(token)
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_url)))


async def main() -> None:
    bot = make_bot(os.environ["TELEGRAM_BOT_TOKEN"], os.environ.get("TELEGRAM_API_URL"))
    async with MioCreate(fairness=FAIRNESS) as client:
        dispatcher = Dispatcher(miocreate=client)  # handlers receive it as `miocreate`
        dispatcher.include_router(router)
        await dispatcher.start_polling(bot)


if __name__ == "__main__":
    asyncio.run(main())
