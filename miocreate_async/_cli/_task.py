"""``miocreate task``: a task's status and result, optionally waited for and downloaded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._models import ImageSwapResult, TaskInfo, TaskResult, VideoSwapResult
from ._args import Options, add_command, add_output, add_timeout
from ._common import Json, jsonable, make_client, print_json, relative
from ._console import Bars, stdout_console
from ._steps import Destination, parse_task_id

if TYPE_CHECKING:
    from ._args import Subcommands

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    parser = add_command(commands, "task", "show a task's status and result", task)
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("--wait", action="store_true", help="wait until the task ends")
    add_output(
        parser,
        "download the result (once succeeded) to this file or folder (default with --wait: "
        "task-<TASK_ID>.<ext> here)",
    )
    add_timeout(parser, 600)


async def task(options: Options) -> int:
    task_id = parse_task_id(options.text("task_id"))
    output, wait = options.optional_text("output"), options.flag("wait")
    # With --wait, the result is downloaded as `swap` does; refused now if the file exists.
    target = None
    if output or wait:
        target = Destination(output, None, options.overwrite, name=f"task-{task_id}")
    async with make_client(options) as client:
        with Bars(disable=options.json) as bars:
            if wait:
                step = bars.step(f"task {task_id}")
                await client.wait(task_id, timeout=options.number("timeout"))
                bars.done(step)
            info = await client.get_task(task_id)
            path = None
            if target is not None and isinstance(info.result, (ImageSwapResult, VideoSwapResult)):
                path = await target.download(info.result, bars, task_id)
    status = 1 if info.failed else 0
    if options.json:
        print_json({**_info_fields(info), "path": path.resolve() if path else None})
        return status
    console = stdout_console()
    line = f"task {info.id}: {info.status.value} (status {info.status_code})"
    console.print(line + (f": {info.message}" if info.message else ""))
    if isinstance(info.result, list):
        for number, face in enumerate(info.result, 1):
            console.print(f"  face {number}: {face.avatar_part_key} ({face.width}x{face.height})")
    elif info.result is not None and (options.verbose or path is None):
        console.print(f"  result: {info.result.merge_url}", soft_wrap=True)
    if path is not None:
        console.print(f"Saved {relative(path)}")
    elif target is not None and not info.done:
        console.print("Not finished yet: nothing downloaded (use --wait).", style="yellow")
    return status


def _info_fields(info: TaskInfo[TaskResult]) -> dict[str, Json]:
    return {
        "id": info.id,
        "status": jsonable(info.status),
        "status_code": info.status_code,
        "message": info.message,
        "kind": jsonable(info.kind),
        "result": jsonable(info.result),
    }
