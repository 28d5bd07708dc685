"""A Discord bot (discord.py 2) with a ``/swap`` slash command: attach a photo (and a face, the
first time), get the photo back with the face swapped in.

One MioCreate client, opened before the bot starts and closed after it, serves every command.
Your face is remembered (uploaded once, and uploaded again if the service has forgotten it:
code 702), so later swaps need only the photo.

Every swap costs the bot's owner credits, so strangers are kept in check: each user gets
``BOT_DAILY_SWAPS`` swaps a day (default 10), ``BOT_ALLOWED_USERS`` (comma-separated Discord
user ids) limits the bot to those users, and attachments that are not JPG, PNG or WEBP images,
or are over ``BOT_MAX_MB`` (default 10), are refused before they are downloaded.

    export DISCORD_BOT_TOKEN=...
    export MIOCREATE_CLIENT_ID=... MIOCREATE_CLIENT_SECRET=...
    # or, against `miocreate emulator --port 8765`: MIOCREATE_BASE_URL=http://127.0.0.1:8765
    # MIOCREATE_CLIENT_ID=emulator-client-id MIOCREATE_CLIENT_SECRET=emulator-client-secret
    python examples/discord_bot.py

The swap itself is ``swap_attachment``, a plain async function with no Discord in it.
Needs: pip install 'miocreate-async' discord.py
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from dataclasses import dataclass, field

import discord
from discord import app_commands

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
    "FaceSwapBot",
    "UserFace",
    "check_attachment",
    "main",
    "swap",
    "swap_attachment",
    "user_message",
]

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
MAX_BYTES = int(float(os.environ.get("BOT_MAX_MB", "10")) * 1024 * 1024)
#: One client serves every user: at most 2 swaps of one user at once, 8 in all (the others
#: wait their turn, each user's first), per the guide "Spend and fairness".
FAIRNESS = Fairness(slots=8, per_key=KeyLimits(concurrency=2))


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


async def swap_attachment(
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


def check_attachment(content_type: str | None, size: int, max_bytes: int = MAX_BYTES) -> str | None:
    """Why an attachment is refused before downloading it, or None."""
    if (content_type or "").split(";")[0].strip() not in IMAGE_TYPES:
        return "Please attach a JPG, PNG or WEBP image."
    if size > max_bytes:
        return f"That image is too large: at most {max_bytes // (1024 * 1024)} MB, please."
    return None


class FaceSwapBot(discord.Client):
    """The bot: a command tree with ``/swap``, the shared MioCreate client, users' faces."""

    def __init__(self, miocreate: MioCreate, allowance: Allowance | None = None) -> None:
        super().__init__(intents=discord.Intents.default())
        self.miocreate = miocreate
        self.allowance = allowance or Allowance.from_env()
        #: Faces by Discord user id (in memory: an example, not a database).
        self.faces: dict[int, UserFace] = {}
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(swap)

    async def setup_hook(self) -> None:
        await self.tree.sync()  # publish /swap (global commands may take a while to show)


@app_commands.command(description="Swap a face into a photo")
@app_commands.describe(
    photo="the photo to edit", face="your face (remembered for next time)", hd="high quality"
)
async def swap(
    interaction: discord.Interaction,
    photo: discord.Attachment,
    face: discord.Attachment | None = None,
    hd: bool = False,
) -> None:
    bot = interaction.client
    assert isinstance(bot, FaceSwapBot)
    user = interaction.user.id
    for attachment in (photo, face):
        if attachment is None:
            continue
        refusal = check_attachment(attachment.content_type, attachment.size)
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
    if face is None and user not in bot.faces:
        await interaction.response.send_message(
            "Attach your face too (only the first time).", ephemeral=True
        )
        return
    refusal = bot.allowance.refusal(user)
    if refusal is not None:
        await interaction.response.send_message(refusal, ephemeral=True)
        return
    # Swaps take seconds: acknowledge now (Discord wants an answer within 3 s).
    await interaction.response.defer(thinking=True)
    if face is not None:
        bot.faces[user] = UserFace(await face.read())
    try:
        swapped = await swap_attachment(
            bot.miocreate, await photo.read(), bot.faces[user], hd=hd, key=str(user)
        )
    except MioCreateError as error:
        bot.allowance.refund(user)  # only swaps made count
        logging.getLogger("discord_bot").warning("a swap failed: %r", error)
        await interaction.followup.send(user_message(error))
        return
    await interaction.followup.send(file=discord.File(io.BytesIO(swapped), "swapped.jpg"))


async def main() -> None:
    async with MioCreate(fairness=FAIRNESS) as miocreate, FaceSwapBot(miocreate) as bot:
        await bot.start(os.environ["DISCORD_BOT_TOKEN"])


if __name__ == "__main__":
    asyncio.run(main())
