"""The consoles and progress bars, drawn with rich (the ``cli`` extra).

rich is imported when something is drawn, not when this module is: the parser, ``demo`` and
``emulator`` work without the extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["Bars", "stderr_console", "stdout_console"]


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


class Bars:
    """Progress bars on stderr for uploads, tasks and downloads; silent under ``--json``."""

    def __init__(self, *, disable: bool) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        console = stderr_console()
        # Transient bars: drawn only on a terminal (elsewhere they would leave blank lines).
        self.progress: Progress = Progress(
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
