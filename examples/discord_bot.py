"""A Discord bot (discord.py 2) with a ``/swap`` slash command: attach a photo and a face, get
the photo back with the face swapped in.

One MioCreate client, opened before the bot starts and closed after it, serves every command.

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
import os
import tempfile

import anyio
import discord
from discord import app_commands

from miocreate_async import MediaInput, MioCreate, MioCreateError

__all__ = ["FaceSwapBot", "main", "swap", "swap_attachment"]


async def swap_attachment(
    client: MioCreate, photo: bytes, face: MediaInput, *, hd: bool = False
) -> bytes:
    """Swap ``face`` into ``photo``; the swapped image's bytes."""
    result = await client.swap_image(photo, face, hd=hd, timeout=300)
    with tempfile.TemporaryDirectory(prefix="miocreate-bot-") as folder:
        path = await result.download(folder)
        return await anyio.Path(path).read_bytes()


class FaceSwapBot(discord.Client):
    """The bot: a command tree with ``/swap``, and the shared MioCreate client."""

    def __init__(self, miocreate: MioCreate) -> None:
        super().__init__(intents=discord.Intents.default())
        self.miocreate = miocreate
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(swap)

    async def setup_hook(self) -> None:
        await self.tree.sync()  # publish /swap (global commands may take a while to show)


@app_commands.command(description="Swap a face into a photo")
@app_commands.describe(photo="the photo to edit", face="the new face", hd="high quality")
async def swap(
    interaction: discord.Interaction,
    photo: discord.Attachment,
    face: discord.Attachment,
    hd: bool = False,
) -> None:
    assert isinstance(interaction.client, FaceSwapBot)
    # Swaps take seconds: acknowledge now (Discord wants an answer within 3 s).
    await interaction.response.defer(thinking=True)
    try:
        swapped = await swap_attachment(
            interaction.client.miocreate, await photo.read(), await face.read(), hd=hd
        )
    except MioCreateError as error:
        await interaction.followup.send(f"Sorry, that failed: {error.message}")
        return
    await interaction.followup.send(file=discord.File(io.BytesIO(swapped), "swapped.jpg"))


async def main() -> None:
    async with MioCreate() as miocreate, FaceSwapBot(miocreate) as bot:
        await bot.start(os.environ["DISCORD_BOT_TOKEN"])


if __name__ == "__main__":
    asyncio.run(main())
