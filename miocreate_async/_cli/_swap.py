"""``miocreate swap`` and ``miocreate swap-video``: one face into one image or video."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from .._errors import SwapInterrupted
from ._args import SOURCE_HELP, Options, add_command, add_hd, add_output, add_timeout
from ._common import make_client, source_of
from ._console import Bars
from ._steps import Destination, Interrupt, check_kind, print_saved, swap_task

if TYPE_CHECKING:
    from ._args import Subcommands

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    for name, media, what, wait, run in (
        ("swap", "image", "an image", 600, swap_image),
        ("swap-video", "video", "a video", 1800, swap_video),
    ):
        parser = add_command(
            commands, name, f"swap a face into {what} and download the result", run
        )
        parser.add_argument(media, help=f"the {media} to edit: {SOURCE_HELP}")
        parser.add_argument("--face", required=True, help=f"the new face: {SOURCE_HELP}")
        add_hd(parser)
        add_output(
            parser,
            f"file or existing folder for the result (default: <{media}>-swapped.<ext> here)",
        )
        add_timeout(parser, wait)


async def swap_image(options: Options) -> int:
    return await _swap(options, video=False)


async def swap_video(options: Options) -> int:
    return await _swap(options, video=True)


async def _swap(options: Options, *, video: bool) -> int:
    media = source_of(options.text("video" if video else "image"))
    face = source_of(options.text("face"))
    check_kind(media, video=video, role="media")
    check_kind(face, video=False, role="face")
    destination = Destination(options.optional_text("output"), media, options.overwrite)
    hd, timeout = options.flag("hd"), options.number("timeout")
    created: list[int] = []
    async with make_client(options) as client:
        with Bars(disable=options.json) as bars, Interrupt() as interrupt, interrupt.scope:
            task_id, result = await swap_task(
                client,
                bars,
                [media, face],
                video=video,
                hd=hd,
                timeout=timeout,
                created=created.append,
            )
            path = await destination.download(result, bars, task_id)
    if interrupt.scope.cancelled_caught:
        if not created:
            raise KeyboardInterrupt
        # Paid, not saved: the one thing to say is how to collect it.
        target = destination.file or f"{destination.stem}-swapped.<ext>"
        raise SwapInterrupted(
            f"interrupted after task {created[0]} was created: it is paid for and may still "
            f"finish; collect it with: miocreate task {created[0]} --wait -o "
            f"{shlex.quote(str(target))}",
            operation="swap",
            task_id=created[0],
        )
    print_saved(options, task_id, path, result)
    return 0
