"""``miocreate faces`` (list the faces of an image or video) and ``miocreate swap-faces`` (swap
several of them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._formats import is_video_name
from .._models import DetectedFace
from ._args import SOURCE_HELP, Options, add_command, add_hd, add_output, add_timeout
from ._common import (
    CliError,
    Source,
    SwapResult,
    make_client,
    name_of,
    print_json,
    source_of,
)
from ._console import Bars, stdout_console
from ._steps import Destination, check_kind, parse_task_id, print_saved, upload_all, wait_task

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from .._models import TaskHandle
    from ._args import Subcommands

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    found = add_command(
        commands, "faces", "list the faces of an image or video (for swap-faces)", faces
    )
    found.add_argument("media", help=f"the image or video: {SOURCE_HELP}")
    add_timeout(found, 600)

    multi = add_command(
        commands,
        "swap-faces",
        "swap several faces of an image or video: --face N=new.jpg (N as listed by `faces`)",
        swap_faces,
    )
    multi.add_argument("media", help=f"the image or video the faces are in: {SOURCE_HELP}")
    multi.add_argument(
        "--face",
        dest="faces",
        action="append",
        required=True,
        metavar="WHICH=NEW",
        help="WHICH is a face number (1, 2...) or a face key from `faces`; NEW the new face "
        "(a file or key:<uploaded key>); repeat for each face",
    )
    multi.add_argument(
        "--detection",
        metavar="TASK_ID",
        help="the task id printed by `faces` (default: detect the faces now)",
    )
    add_hd(multi)
    add_output(
        multi, "file or existing folder for the result (default: <media>-swapped.<ext> here)"
    )
    add_timeout(multi, 1800)


async def faces(options: Options) -> int:
    media = source_of(options.text("media"))
    timeout = options.number("timeout")
    async with make_client(options) as client:
        with Bars(disable=options.json) as bars:
            (key,) = await upload_all(client, bars, [media])
            submit = client.create_face_detection(key)
            task_id, found = await wait_task(client, bars, "detect faces", submit, timeout)
    if options.json:
        print_json({"task_id": task_id, "media_key": key, "faces": found})
        return 0
    console = stdout_console()
    if not found:
        console.print(f"No face found in {name_of(media)} (task {task_id}).")
        return 0
    from rich.table import Table

    table = Table(title=f"{len(found)} face(s) in {name_of(media)}, detection task {task_id}")
    table.add_column("#", justify="right")
    table.add_column("size", justify="right")
    table.add_column("eyes, nose, mouth")
    for number, face in enumerate(found, 1):
        landmarks = " ".join(f"{p.x},{p.y}" for p in face.kps)
        table.add_row(str(number), f"{face.width}x{face.height}", landmarks)
    console.print(table)
    # Keys are long: whole, one per line, below the table (a table column would cut them).
    console.print("Face keys (--face NUMBER=new.jpg, or --face KEY=new.jpg):")
    for number, face in enumerate(found, 1):
        console.print(f"  {number}: {face.avatar_part_key}", soft_wrap=True)
    console.print(
        f"Swap them with: miocreate swap-faces {options.text('media')} --detection {task_id} "
        "--face 1=new-face.jpg"
    )
    return 0


def _pairs(specs: list[str]) -> list[tuple[str, Source]]:
    pairs = []
    for spec in specs:
        which, sign, new = spec.partition("=")
        if not sign or not which or not new:
            raise CliError(f"--face wants WHICH=NEW (a face number or key, then a file): {spec!r}")
        pairs.append((which.strip(), source_of(new)))
    return pairs


async def swap_faces(options: Options) -> int:
    media = source_of(options.text("media"))
    kind = is_video_name(name_of(media))
    if kind is None:
        raise CliError(f"cannot tell an image from a video by its name: {options.text('media')}")
    pairs = _pairs(options.texts("faces"))
    for _, new in pairs:
        check_kind(new, video=False, role="new face")
    destination = Destination(options.optional_text("output"), media, options.overwrite)
    detection_text = options.optional_text("detection")
    hd, timeout = options.flag("hd"), options.number("timeout")
    async with make_client(options) as client:
        with Bars(disable=options.json) as bars:
            found: list[DetectedFace]
            if detection_text is not None:
                detection = int(parse_task_id(detection_text))
                step = bars.step(f"faces of task {detection}")
                waited = await client.wait(detection, timeout=timeout)
                bars.done(step)
                if not isinstance(waited, list):
                    raise CliError(f"task {detection} is not a face detection")
                found = waited
            else:
                (key,) = await upload_all(client, bars, [media])
                submit = client.create_face_detection(key)
                detection, found = await wait_task(client, bars, "detect faces", submit, timeout)
            targets = [_face(which, found) for which, _ in pairs]
            new_keys = await upload_all(client, bars, [new for _, new in pairs])
            mapping: dict[DetectedFace | str, str] = dict(zip(targets, new_keys, strict=True))
            create = client.create_multi_video_swap if kind else client.create_multi_image_swap
            swap: Awaitable[TaskHandle[SwapResult]] = create(detection, mapping, hd=hd)
            task_id, result = await wait_task(client, bars, "swap faces", swap, timeout)
            path = await destination.download(result, bars, task_id)
    print_saved(options, task_id, path, result)
    return 0


def _face(which: str, found: list[DetectedFace]) -> DetectedFace | str:
    if not which.isdigit():
        return which  # a face key, as `faces` printed it
    number = int(which)
    if not 1 <= number <= len(found):
        raise CliError(f"no face number {number}: the detection found {len(found)} face(s)")
    return found[number - 1]
