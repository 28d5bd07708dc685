"""The CLI's single-job commands: swap, swap-video, faces, swap-faces, task (batch has its own
module). Each uploads with progress bars, submits, waits and downloads; none overwrites a file
unless ``--overwrite`` was given, and each refuses before spending a credit when it can."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ._cli_common import (
    CliError,
    check_free,
    default_output,
    is_video_name,
    make_client,
    name_of,
    print_json,
    relative,
    source_of,
    suffix_of,
    taken,
)
from ._client import Key, MioCreate
from ._models import DetectedFace, ImageSwapResult, TaskInfo, VideoSwapResult

__all__ = ["COMMANDS", "Bars", "stderr_console"]

Options = Any  # an argparse.Namespace
SwapResult = ImageSwapResult | VideoSwapResult


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


class Bars:
    """Progress bars on stderr for uploads, tasks and downloads; silent under ``--json``."""

    def __init__(self, *, disable: bool) -> None:
        console = stderr_console()
        # Transient bars: drawn only on a terminal (elsewhere they would leave blank lines).
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=disable or not console.is_terminal,
            transient=True,
        )

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def transfer(self, description: str) -> tuple[TaskID, Callable[[int, int | None], None]]:
        """A byte bar and the progress callback that moves it."""
        bar = self.progress.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            self.progress.update(bar, completed=done, total=total)

        return bar, update

    def step(self, description: str) -> TaskID:
        """A spinner without a bar, for a task being waited for."""
        return self.progress.add_task(description, total=None)

    def done(self, bar: TaskID) -> None:
        self.progress.remove_task(bar)


# --- building blocks ---------------------------------------------------------------------------


async def upload_all(client: MioCreate, bars: Bars, sources: list[Any]) -> list[str]:
    """Keys for the sources, uploading each distinct file once, concurrently, with bars."""
    distinct: dict[Any, str] = {}
    for source in sources:
        if not isinstance(source, Key):
            distinct.setdefault(source.resolve(), "")

    async def upload(path: Path) -> None:
        bar, update = bars.transfer(f"upload {path.name}")
        distinct[path] = await client.upload(path, progress=update)
        bars.done(bar)

    async with anyio.create_task_group() as group:
        for path in distinct:
            group.start_soon(upload, path)
    return [str(s) if isinstance(s, Key) else distinct[s.resolve()] for s in sources]


async def wait_task(
    client: MioCreate, bars: Bars, what: str, submit: Awaitable[Any], timeout: float
) -> tuple[int, Any]:
    """Submit a task, then wait for its result under a spinner; returns (task id, result)."""
    step = bars.step(f"{what}: submitting")
    handle = await submit
    bars.progress.update(step, description=f"{what}: task {handle.id}")
    result = await client.wait(handle, timeout=timeout)
    bars.done(step)
    return handle.id, result


class Destination:
    """Where a result goes: an explicit file, or ``<stem>-swapped`` plus the result's extension.

    Checked before anything is spent: an existing file is refused unless ``--overwrite``.
    """

    def __init__(self, output: str | None, source: Any, overwrite: bool) -> None:
        self.overwrite = overwrite
        self.file: Path | None = None
        self.stem: Path | None = None
        target = Path(output).expanduser() if output else None
        if target is not None and not target.is_dir():
            check_free(target, overwrite)
            self.file = target
            return
        self.stem = default_output(source, target)
        existing = taken(self.stem)
        if existing is not None and not overwrite:
            raise CliError(f"the output exists: {existing} (pass --overwrite to replace it)")

    def path_for(self, result: SwapResult) -> Path:
        if self.file is not None:
            return self.file
        assert self.stem is not None
        return self.stem.with_name(self.stem.name + suffix_of(result))

    async def download(self, result: SwapResult, bars: Bars) -> Path:
        path = self.path_for(result)
        check_free(path, self.overwrite)
        bar, update = bars.transfer(f"download {path.name}")
        saved = await result.download(path, overwrite=self.overwrite, progress=update)
        bars.done(bar)
        return saved


def _check_kind(source: Any, *, video: bool | None, role: str) -> None:
    """Refuse early an image where a video is needed and the reverse (by the extension)."""
    kind = is_video_name(name_of(source))
    if kind is None or video is None or kind == video:
        return
    if role == "media":
        hint = "use `miocreate swap-video`" if kind else "use `miocreate swap`"
        raise CliError(f"{name_of(source)} is {'a video' if kind else 'an image'}: {hint}")
    raise CliError(f"the {role} must be an image: {name_of(source)}")


def _print_saved(options: Options, task_id: int, path: Path, result: SwapResult) -> None:
    if options.json:
        print_json({"task_id": task_id, "path": path.resolve(), "result": result})
        return
    console = stdout_console()
    console.print(f"Saved {relative(path)}  (task {task_id})")
    if result.expires_at is not None:
        expiry = result.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        console.print(f"Result URL valid until {expiry}: {result.merge_url}", style="dim")


# --- commands ----------------------------------------------------------------------------------


async def swap(options: Options, *, video: bool = False) -> int:
    media = source_of(options.video if video else options.image)
    face = source_of(options.face)
    _check_kind(media, video=video, role="media")
    _check_kind(face, video=False, role="face")
    destination = Destination(options.output, media, options.overwrite)
    async with make_client(options) as client:
        with Bars(disable=options.json) as bars:
            media_key, face_key = await upload_all(client, bars, [media, face])
            create = client.create_video_swap if video else client.create_image_swap
            task_id, result = await wait_task(
                client, bars, "swap", create(media_key, face_key, hd=options.hd), options.timeout
            )
            path = await destination.download(result, bars)
    _print_saved(options, task_id, path, result)
    return 0


async def swap_video(options: Options) -> int:
    return await swap(options, video=True)


async def faces(options: Options) -> int:
    media = source_of(options.media)
    async with make_client(options) as client:
        with Bars(disable=options.json) as bars:
            (key,) = await upload_all(client, bars, [media])
            task_id, found = await wait_task(
                client, bars, "detect faces", client.create_face_detection(key), options.timeout
            )
    if options.json:
        print_json({"task_id": task_id, "media_key": key, "faces": found})
        return 0
    console = stdout_console()
    if not found:
        console.print(f"No face found in {name_of(media)} (task {task_id}).")
        return 0
    table = Table(title=f"{len(found)} face(s) in {name_of(media)}, detection task {task_id}")
    table.add_column("#", justify="right")
    table.add_column("face key")
    table.add_column("size", justify="right")
    table.add_column("eyes, nose, mouth")
    for number, face in enumerate(found, 1):
        landmarks = " ".join(f"{p.x},{p.y}" for p in face.kps)
        table.add_row(str(number), face.avatar_part_key, f"{face.width}x{face.height}", landmarks)
    console.print(table)
    console.print(
        f"Swap them with: miocreate swap-faces {options.media} --detection {task_id} "
        "--face 1=new-face.jpg"
    )
    return 0


def _pairs(specs: list[str]) -> list[tuple[str, Any]]:
    pairs = []
    for spec in specs:
        which, sign, new = spec.partition("=")
        if not sign or not which or not new:
            raise CliError(f"--face wants WHICH=NEW (a face number or key, then a file): {spec!r}")
        pairs.append((which.strip(), source_of(new)))
    return pairs


async def swap_faces(options: Options) -> int:
    media = source_of(options.media)
    kind = is_video_name(name_of(media))
    if kind is None:
        raise CliError(f"cannot tell an image from a video by its name: {options.media}")
    pairs = _pairs(options.faces)
    for _, new in pairs:
        _check_kind(new, video=False, role="new face")
    destination = Destination(options.output, media, options.overwrite)
    async with make_client(options) as client:
        with Bars(disable=options.json) as bars:
            if options.detection is not None:
                detection = int(_task_id(options.detection))
                step = bars.step(f"faces of task {detection}")
                found = await client.wait(detection, timeout=options.timeout)
                bars.done(step)
                if not isinstance(found, list):
                    raise CliError(f"task {detection} is not a face detection")
            else:
                (key,) = await upload_all(client, bars, [media])
                detection, found = await wait_task(
                    client, bars, "detect faces", client.create_face_detection(key), options.timeout
                )
            targets = [_face(which, found) for which, _ in pairs]
            new_keys = await upload_all(client, bars, [new for _, new in pairs])
            mapping: dict[DetectedFace | str, str] = dict(zip(targets, new_keys, strict=True))
            create = client.create_multi_video_swap if kind else client.create_multi_image_swap
            task_id, result = await wait_task(
                client,
                bars,
                "swap faces",
                create(detection, mapping, hd=options.hd),
                options.timeout,
            )
            path = await destination.download(result, bars)
    _print_saved(options, task_id, path, result)
    return 0


def _face(which: str, found: list[DetectedFace]) -> DetectedFace | str:
    if not which.isdigit():
        return which  # a face key, as `faces` printed it
    number = int(which)
    if not 1 <= number <= len(found):
        raise CliError(f"no face number {number}: the detection found {len(found)} face(s)")
    return found[number - 1]


def _task_id(text: str) -> str:
    if not text.strip().isdigit():
        raise CliError(f"not a task id: {text!r}")
    return text.strip()


async def task(options: Options) -> int:
    task_id = _task_id(options.task_id)
    target = _task_output(options.output, options.overwrite)
    async with make_client(options) as client:
        with Bars(disable=options.json) as bars:
            if options.wait:
                step = bars.step(f"task {task_id}")
                await client.wait(task_id, timeout=options.timeout)
                bars.done(step)
            info: TaskInfo[Any] = await client.get_task(task_id)
            path = None
            if target is not None and isinstance(info.result, (ImageSwapResult, VideoSwapResult)):
                bar, update = bars.transfer("download")
                path = await info.result.download(
                    target, overwrite=options.overwrite, progress=update
                )
                bars.done(bar)
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
    elif info.result is not None:
        console.print(f"  result: {info.result.merge_url}")
    if path is not None:
        console.print(f"Saved {relative(path)}")
    elif target is not None and not info.done:
        console.print("Not finished yet: nothing downloaded (use --wait).", style="yellow")
    return status


def _task_output(output: str | None, overwrite: bool) -> Path | None:
    target = Path(output).expanduser() if output else None
    if target is not None and not target.is_dir():
        check_free(target, overwrite)
    return target


def _info_fields(info: TaskInfo[Any]) -> dict[str, Any]:
    return {
        "id": info.id,
        "status": info.status,
        "status_code": info.status_code,
        "message": info.message,
        "kind": info.kind,
        "result": info.result,
    }


async def batch(options: Options) -> int:
    from ._cli_batch import run_batch

    return await run_batch(options)


COMMANDS: dict[str, Callable[[Options], Awaitable[int]]] = {
    "swap": swap,
    "swap-video": swap_video,
    "faces": faces,
    "swap-faces": swap_faces,
    "task": task,
    "batch": batch,
}
