"""The consoles and progress bars, drawn with rich (the ``cli`` extra).

rich is imported when something is drawn, not when this module is: the parser, ``demo`` and
``emulator`` work without the extra.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, Task, TaskID
    from rich.text import Text

__all__ = ["Bars", "bytes_only", "show_log", "stderr_console", "stdout_console"]


class _LogLines(logging.Handler):
    """The library's log as lines on stderr (rich draws them above live bars). A ``sink``, when
    set (the batch's status line), takes the warnings instead: a retry shows under the bars."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.sink: Callable[[str], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if self.sink is not None and record.levelno >= logging.WARNING:
                self.sink(message)
            else:
                print(f"miocreate: {message}", file=sys.stderr)  # the stderr of the moment
        except Exception:
            self.handleError(record)


_LOG = _LogLines()


def show_log(level: int | None) -> None:
    """Show the library's records from ``level`` (INFO for ``--verbose``, DEBUG for
    ``--debug``); always its warnings, such as retries announced (at most one per few s)."""
    logger = logging.getLogger("miocreate_async")
    _LOG.setLevel(level or logging.WARNING)
    if _LOG not in logger.handlers:
        logger.addHandler(_LOG)
    if logger.level == logging.NOTSET or logger.level > _LOG.level:
        logger.setLevel(_LOG.level)


def log_sink(sink: Callable[[str], None] | None) -> None:
    """Where the library's warnings go while a batch draws its bars (None: back to stderr)."""
    _LOG.sink = sink


def bytes_only(column: ProgressColumn) -> ProgressColumn:
    """``column`` on transfer rows only (rows added with ``transfer=True``): a spinner waiting
    for a task shows no byte count."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class _BytesOnly(ProgressColumn):
        def render(self, task: Task) -> Text:
            if not task.fields.get("transfer"):
                return Text("")
            shown = column.render(task)
            return shown if isinstance(shown, Text) else Text(str(shown))

    return _BytesOnly()


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


#: The width of stdout when it is a file or a pipe: no edge, so tables keep whole file names and
#: task ids (rich would otherwise cut them to 80 columns, the width it assumes there).
_UNBOUNDED_WIDTH = 10_000


def stdout_console() -> Console:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = _UNBOUNDED_WIDTH
    return console


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
            bytes_only(DownloadColumn()),
            bytes_only(TransferSpeedColumn()),
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
        bar = self.progress.add_task(description, total=None, transfer=True)

        def update(done: int, total: int | None) -> None:
            self.progress.update(bar, completed=done, total=total)

        return bar, update

    def step(self, description: str) -> TaskID:
        """A spinner without a bar, for a task being waited for."""
        return self.progress.add_task(description, total=None)

    def done(self, bar: TaskID) -> None:
        self.progress.remove_task(bar)
