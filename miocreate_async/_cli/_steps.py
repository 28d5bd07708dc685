"""The steps the single-job commands share: upload with bars, submit and wait, check and pick the
output file, download, print what was saved."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio

from .._client import MioCreate
from .._errors import MioCreateError
from .._formats import is_video_name
from .._models import ProgressCallback, TaskHandle
from .._transfer._inputs import PreparedUpload
from ._args import Options
from ._common import (
    CliError,
    Source,
    SwapResult,
    check_free,
    check_parent,
    default_output,
    name_of,
    output_folder,
    print_json,
    relative,
    suffix_of,
    taken,
)
from ._console import Bars, stdout_console
from ._emulator import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = [
    "Destination",
    "Interrupt",
    "check_kind",
    "parse_task_id",
    "print_saved",
    "swap_task",
    "upload_all",
    "wait_task",
]

R = TypeVar("R")


async def upload_all(client: MioCreate, bars: Bars, sources: list[Source]) -> list[str]:
    """Keys for the sources, uploading each distinct file once, concurrently, with a bar each."""

    def bar_for(_: object, prepared: PreparedUpload) -> ProgressCallback:
        bar, update = bars.transfer(f"upload {prepared.file_name}")

        def moved(done: int, total: int | None) -> None:
            update(done, total)
            if done == total:
                bars.done(bar)

        return moved

    cache = client._upload_cache(progress=bar_for)
    return await cache.keys_of([(source, None, "input") for source in sources])


async def wait_task(
    client: MioCreate,
    bars: Bars,
    what: str,
    submit: Awaitable[TaskHandle[R]],
    timeout: float,
) -> tuple[int, R]:
    """Submit a task, then wait for its result under a spinner; returns (task id, result)."""
    step = bars.step(f"{what}: submitting")
    handle = await submit
    bars.progress.update(step, description=f"{what}: task {handle.id}")
    result = await client.wait(handle, timeout=timeout)
    bars.done(step)
    return handle.id, result


async def swap_task(
    client: MioCreate,
    bars: Bars,
    sources: list[Source],
    *,
    video: bool,
    hd: bool,
    timeout: float,
    created: Callable[[int], object],
) -> tuple[int, SwapResult]:
    """Upload the media and the face with bars, then swap under a spinner, as the one-call
    jobs do (the job runner); returns (task id, result). ``created`` hears the task id as soon
    as the task exists."""
    steps: list[TaskID] = []
    task_ids: list[int] = []

    async def keys() -> list[str]:
        uploaded = await upload_all(client, bars, sources)
        steps.append(bars.step("swap: submitting"))
        return uploaded

    def named(task_id: int) -> None:
        task_ids.append(task_id)
        created(task_id)
        bars.progress.update(steps[0], description=f"swap: task {task_id}")

    result = await client._swap_once(keys, video=video, hd=hd, timeout=timeout, created=named)
    bars.done(steps[0])
    return task_ids[0], result


class Destination:
    """Where a result goes: an explicit file, or ``<stem>-swapped`` plus the result's extension.

    Checked before anything is spent: an existing file is refused unless ``--overwrite``.
    """

    def __init__(
        self, output: str | None, source: Source | None, overwrite: bool, *, name: str = ""
    ) -> None:
        self.overwrite = overwrite
        self.file: Path | None = None
        self.stem: Path | None = None
        folder = output_folder(output) if output else None
        if output and folder is None:
            target = Path(output).expanduser()
            check_free(target, overwrite)
            check_parent(target)
            self.file = target
            return
        if source is None:
            self.stem = (folder or Path.cwd()) / name
        else:
            self.stem = default_output(source, folder)
        existing = taken(self.stem)
        if existing is not None and not overwrite:
            raise CliError(
                f"the output exists: {existing} (pass --overwrite to replace it)",
                kind="OutputExistsError",
            )

    def path_for(self, result: SwapResult) -> Path:
        if self.file is not None:
            return self.file
        assert self.stem is not None
        return self.stem.with_name(self.stem.name + suffix_of(result))

    async def download(self, result: SwapResult, bars: Bars, task_id: int | str) -> Path:
        """Save the paid result; if that fails, say how to collect it later."""
        path = self.path_for(result)
        try:
            check_free(path, self.overwrite)
            bar, update = bars.transfer(f"download {path.name}")
            saved = await result.download(path, overwrite=self.overwrite, progress=update)
        except (MioCreateError, CliError, OSError) as error:
            raise CliError(
                f"task {task_id} succeeded but its result was not saved ({error}); collect it "
                f"with: miocreate task {task_id} --wait -o {shlex.quote(str(path))}",
                status=1,
            ) from error
        bars.done(bar)
        return saved


def check_kind(source: Source, *, video: bool | None, role: str) -> None:
    """Refuse early an image where a video is needed and the reverse (by the extension)."""
    kind = is_video_name(name_of(source))
    if kind is None or video is None or kind == video:
        return
    if role == "media":
        hint = "use `miocreate swap-video`" if kind else "use `miocreate swap`"
        raise CliError(f"{name_of(source)} is {'a video' if kind else 'an image'}: {hint}")
    raise CliError(f"the {role} must be an image: {name_of(source)}")


def print_saved(options: Options, task_id: int, path: Path, result: SwapResult) -> None:
    if options.json:
        print_json({"task_id": task_id, "path": path.resolve(), "result": result})
        return
    console = stdout_console()
    console.print(f"Saved {relative(path)}  (task {task_id})")
    if options.verbose and result.expires_at is not None:
        # A signed URL is long: shown on request only (--verbose; --json has it too).
        expiry = result.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        console.print(f"Result URL valid until {expiry}: {result.merge_url}", style="dim")


def parse_task_id(text: str) -> str:
    if not text.strip().isdigit():
        raise CliError(f"not a task id: {text!r}")
    return text.strip()


class Interrupt:
    """Ctrl-C or SIGTERM cancels ``scope`` once (a batch's journal is closed, so flushed; a
    swap says its task id); a second one exits at once."""

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self._signals = (signal.SIGINT, signal.SIGTERM)

    def _first(self) -> None:
        if self.scope.cancel_called:
            os._exit(EXIT_INTERRUPTED)
        self.scope.cancel()

    def __enter__(self) -> Interrupt:
        loop = asyncio.get_running_loop()
        for number in self._signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(number, self._first)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        for number in self._signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(number)
