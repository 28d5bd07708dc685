"""``miocreate batch``: a folder of images and videos with one face, or a CSV of jobs, run
through ``swap_many`` end to end with live progress bars (fed by its events), downloaded as
results arrive, then summed up in a table. The exit status is 0 only when every job succeeded.

``swap_many`` uploads each distinct file once (a bar for the bytes), tells images from videos by
their content, and runs the swaps (a bar for the tasks, one for the downloads). A job whose
upload failed is reported failed and never submitted. Outputs are
``<output>/<input stem>-swapped.<ext>``; existing ones are refused before anything is spent,
unless ``--overwrite``.
"""

from __future__ import annotations

import csv
import hashlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import attrs

from .._batch import BatchEvent, SwapJob, UploadProgress
from .._client import MioCreate
from .._formats import ACCEPTED_EXTENSIONS
from ._args import Options, add_command, add_hd, add_output, add_timeout, positive_int
from ._common import (
    CliError,
    Json,
    SwapResult,
    jsonable,
    make_client,
    print_json,
    relative,
    suffix_of,
    taken,
)
from ._console import stderr_console, stdout_console
from ._worker import add_redis, check_extra

if TYPE_CHECKING:
    from rich.progress import Progress

    from ._args import Subcommands

__all__ = ["Row", "load_jobs", "register"]

_TRUE = frozenset({"1", "true", "yes", "y", "hd", "on"})
_FALSE = frozenset({"", "0", "false", "no", "n", "off", "sd"})
_HEADERS = frozenset({"image", "media", "video", "input", "path", "file"})


@attrs.define
class Row:
    """One job of the batch and what became of it."""

    number: int
    image: Path
    face: Path
    hd: bool
    stem: Path  # the output without its extension
    task_id: int | None = None
    path: Path | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None and self.error is None

    def as_json(self) -> Json:
        error: Json = None
        if self.error is not None:
            error = {
                "type": type(self.error).__name__,
                "message": str(self.error),
                "code": jsonable(getattr(self.error, "code", None)),
            }
        return {
            "number": self.number,
            "image": str(self.image),
            "face": str(self.face),
            "hd": self.hd,
            "status": "succeeded" if self.ok else "failed",
            "task_id": self.task_id,
            "path": str(self.path.resolve()) if self.path else None,
            "error": error,
        }


# --- the jobs ----------------------------------------------------------------------------------


def load_jobs(source: Path, face: Path | None, hd: bool, output: Path) -> list[Row]:
    """The batch's jobs, from a folder (with ``face``) or a CSV file of ``image,face[,hd]``."""
    if source.is_dir():
        if face is None:
            raise CliError("a folder needs --face (the new face for every file)")
        if not face.is_file():
            raise CliError(f"no such file: {face}")
        pairs = [(path, face, hd) for path in _media_in(source, face, output)]
        if not pairs:
            kinds = ", ".join(sorted(ACCEPTED_EXTENSIONS))
            raise CliError(f"no images or videos ({kinds}) in {source}")
    elif source.is_file():
        pairs = _read_csv(source, face, hd)
    else:
        raise CliError(f"no such folder or CSV file: {source}")
    rows = []
    used: set[str] = set()
    for number, (image, new_face, row_hd) in enumerate(pairs, 1):
        stem = _unique_stem(output, image, used)
        rows.append(Row(number=number, image=image, face=new_face, hd=row_hd, stem=stem))
    return rows


def _media_in(folder: Path, face: Path, output: Path) -> list[Path]:
    face = face.resolve()
    same_folder = output.resolve() == folder.resolve()
    found = []
    for path in sorted(folder.iterdir(), key=_natural):
        if not path.is_file() or path.suffix.lower().lstrip(".") not in ACCEPTED_EXTENSIONS:
            continue
        if path.resolve() == face or (same_folder and path.stem.endswith("-swapped")):
            continue
        found.append(path)
    return found


def _natural(path: Path) -> list[tuple[int, str]]:
    """Sort key of names as people count: p2 before p10."""
    parts = re.split(r"(\d+)", path.name.lower())
    return [(int(part), "") if part.isdigit() else (-1, part) for part in parts]


def _read_csv(
    source: Path, default_face: Path | None, default_hd: bool
) -> list[tuple[Path, Path, bool]]:
    base = source.parent
    pairs = []
    with source.open(newline="", encoding="utf-8-sig") as file:
        for line, record in enumerate(csv.reader(file), 1):
            cells = [cell.strip() for cell in record]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if line == 1 and cells[0].lower() in _HEADERS:
                continue
            where = f"{source.name}, line {line}"
            if len(cells) > 3:
                raise CliError(f"{where}: expected image,face[,hd], got {len(cells)} columns")
            image = base / cells[0]
            if len(cells) > 1 and cells[1]:
                face = base / cells[1]
            elif default_face is not None:
                face = default_face
            else:
                raise CliError(f"{where}: no face (add a face column, or pass --face)")
            hd = default_hd
            if len(cells) > 2:
                flag = cells[2].lower()
                if flag not in _TRUE | _FALSE:
                    raise CliError(f"{where}: hd must be 1/0, true/false or yes/no: {cells[2]!r}")
                hd = flag in _TRUE if flag else default_hd
            pairs.append((image, face, hd))
    if not pairs:
        raise CliError(f"no jobs in {source}")
    return pairs


def _unique_stem(output: Path, image: Path, used: set[str]) -> Path:
    base = f"{image.stem}-swapped"
    name, count = base, 1
    while name.lower() in used:
        count += 1
        name = f"{base}-{count}"
    used.add(name.lower())
    return output / name


# --- running it --------------------------------------------------------------------------------


def _progress(disable: bool) -> Progress:
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=stderr_console(),
        disable=disable,
    )


class _Run:
    def __init__(
        self, client: MioCreate, rows: list[Row], options: Options, bars: Progress
    ) -> None:
        self.client = client
        self.rows = rows
        self.bars = bars
        self.overwrite = options.overwrite
        self.concurrency = options.count("concurrency")
        self.timeout = options.number("timeout")
        files = {path.resolve() for row in rows for path in (row.image, row.face)}
        self.sizes = {path: _size(path) for path in files}
        #: Bytes sent of each file, and the files whose upload ended.
        self.sent: dict[Path, int] = {}
        self.uploaded: set[Path] = set()
        self.uploads = bars.add_task(
            "uploads", total=sum(self.sizes.values()) or None, detail=f"0/{len(files)} files"
        )
        self.tasks = bars.add_task("tasks", total=len(rows), detail=_tally(0, 0))
        self.downloads = bars.add_task("downloads", total=len(rows), detail="")
        self.succeeded = self.failed = 0

    def event(self, event: BatchEvent) -> None:
        """``swap_many``'s events: the bytes of the uploads move the uploads bar."""
        if not isinstance(event, UploadProgress) or not isinstance(event.source, Path):
            return
        path = event.source.resolve()
        self.sent[path] = event.done
        if event.done == event.total:
            self.uploaded.add(path)
        self._uploads_moved()

    def _uploads_moved(self) -> None:
        detail = f"{len(self.uploaded)}/{len(self.sizes)} files"
        self.bars.update(self.uploads, completed=sum(self.sent.values()), detail=detail)

    async def swap(self) -> None:
        jobs = [SwapJob(media=row.image, face=row.face, hd=row.hd) for row in self.rows]
        async with (
            anyio.create_task_group() as group,
            self.client.swap_many(
                jobs, concurrency=self.concurrency, timeout=self.timeout, events=self.event
            ) as results,
        ):
            async for outcome in results:
                row = self.rows[outcome.index]
                row.task_id = outcome.task_id
                self.bars.advance(self.tasks)
                if outcome.error is not None or outcome.result is None:
                    self._failed(row, outcome.error or RuntimeError("no result"))
                else:
                    group.start_soon(self._fetch, row, outcome.result)
        # Files that failed their checks or upload sent no more bytes: the bar is done anyway.
        self.sent.update(self.sizes)
        self._uploads_moved()

    async def _fetch(self, row: Row, result: SwapResult) -> None:
        try:
            target = row.stem.with_name(row.stem.name + suffix_of(result))
            row.path = await result.download(target, overwrite=self.overwrite)
        except Exception as error:
            self._failed(row, error)
            return
        self.succeeded += 1
        self.bars.advance(self.downloads)
        self.bars.update(self.tasks, detail=_tally(self.succeeded, self.failed))

    def _failed(self, row: Row, error: BaseException) -> None:
        row.error = error
        self.failed += 1
        self.bars.advance(self.downloads)
        self.bars.update(self.tasks, detail=_tally(self.succeeded, self.failed))


async def _run_distributed(
    client: MioCreate, rows: list[Row], options: Options, bars: Progress, output: Path
) -> None:
    """The batch on the workers of a Redis (``miocreate worker``): inputs by their paths on the
    shared file system; results downloaded here as they arrive, from whichever worker."""
    check_extra()
    from ..distributed import DistributedBatch
    from ..distributed._codec import encode_job

    jobs = [SwapJob(row.image.resolve(), row.face.resolve(), hd=row.hd) for row in rows]
    by_id = {encode_job(job)[0]: row for job, row in zip(jobs, rows, strict=True)}
    name = options.optional_text("batch_name") or _batch_name(output)
    tasks = bars.add_task("tasks", total=len(rows), detail="")
    counts = {"ok": 0, "failed": 0}

    async def fetch(row: Row, result: SwapResult) -> None:
        try:
            target = row.stem.with_name(row.stem.name + suffix_of(result))
            row.path = await result.download(target, overwrite=options.overwrite)
            counts["ok"] += 1
        except Exception as error:
            row.error = error
            counts["failed"] += 1
        bars.update(tasks, detail=_tally(counts["ok"], counts["failed"]))

    async with (
        DistributedBatch(
            options.text("redis"),
            batch=name,
            base_url=client.config.base_url,
            timeout=options.number("timeout"),
            client=client,
        ) as batch,
        anyio.create_task_group() as group,
    ):
        await batch.submit(jobs)
        async for outcome in batch.outcomes():
            row = by_id.get(outcome.job_id or "")
            if row is None:  # a job an earlier run of this batch added
                continue
            row.task_id = outcome.task_id
            bars.advance(tasks)
            if outcome.error is not None or outcome.result is None:
                row.error = outcome.error or RuntimeError("no result")
                counts["failed"] += 1
                bars.update(tasks, detail=_tally(counts["ok"], counts["failed"]))
            else:
                group.start_soon(fetch, row, outcome.result)


def _batch_name(output: Path) -> str:
    """One distributed batch per output folder: the same command again resumes it."""
    digest = hashlib.sha256(str(output.resolve()).encode()).hexdigest()[:16]
    return f"cli-{digest}"


def _tally(succeeded: int, failed: int) -> str:
    return f"{succeeded} ok, {failed} failed" if failed else f"{succeeded} ok"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def prepare(options: Options) -> tuple[list[Row], Path]:
    """The jobs and the output folder; refuses existing outputs before anything is spent."""
    output = Path(options.text("output")).expanduser()
    face_text = options.optional_text("face")
    face = Path(face_text).expanduser() if face_text else None
    rows = load_jobs(Path(options.text("source")).expanduser(), face, options.flag("hd"), output)
    if not options.overwrite:
        existing = [found for row in rows if (found := taken(row.stem)) is not None]
        if existing:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            raise CliError(
                f"the output exists: {existing[0]}{more} (pass --overwrite, or choose another "
                "--output)"
            )
    return rows, output


def register(commands: Subcommands) -> None:
    parser = add_command(
        commands,
        "batch",
        "swap many: a folder of images/videos with one --face, or a CSV of jobs image,face[,hd]",
        run_batch,
    )
    parser.add_argument(
        "source",
        metavar="FOLDER_OR_CSV",
        help="a folder (every image and video in it, with --face) or a CSV file with rows "
        "image,face[,hd] (paths relative to the CSV; a header row is allowed)",
    )
    parser.add_argument("--face", help="the new face for every file of a folder")
    add_hd(parser, "high-quality swaps (CSV: the default)")
    add_output(
        parser,
        "folder for the results, created if needed (default: ./swapped)",
        metavar="FOLDER",
        default="swapped",
    )
    parser.add_argument(
        "-j",
        "--concurrency",
        type=positive_int,
        default=8,
        metavar="N",
        help="jobs in flight at once (default: 8)",
    )
    add_timeout(parser, 1800)
    add_redis(parser, required=False)
    parser.add_argument(
        "--batch-name",
        metavar="NAME",
        help="with --redis: the batch's name (default: one per output folder, so running the "
        "same command again resumes it)",
    )


async def run_batch(options: Options) -> int:
    rows, output = prepare(options)
    started = time.monotonic()
    async with make_client(options) as client:
        with _progress(disable=options.json) as bars:
            if options.optional_text("redis"):
                await _run_distributed(client, rows, options, bars, output)
            else:
                await _Run(client, rows, options, bars).swap()
    elapsed = time.monotonic() - started
    succeeded = sum(row.ok for row in rows)
    if options.json:
        print_json(
            {
                "total": len(rows),
                "succeeded": succeeded,
                "failed": len(rows) - succeeded,
                "seconds": round(elapsed, 3),
                "output": output.resolve(),
                "jobs": [row.as_json() for row in rows],
            }
        )
    else:
        _summary(rows, succeeded, elapsed)
    return 0 if succeeded == len(rows) else 1


#: Larger batches list only their failed jobs in the summary table.
_TABLE_ROWS = 50


def _summary(rows: list[Row], succeeded: int, elapsed: float) -> None:
    from rich.table import Table
    from rich.text import Text

    console = stdout_console()
    shown = rows if len(rows) <= _TABLE_ROWS else [row for row in rows if not row.ok]
    title = "miocreate batch" if shown is rows else "miocreate batch: the failed jobs"
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("input")
    table.add_column("face")
    table.add_column("hd")
    table.add_column("task", justify="right")
    table.add_column("result")
    for row in shown:
        if row.ok and row.path is not None:
            outcome = Text(relative(row.path), style="green")
        else:
            message = " ".join(str(row.error).split()) or type(row.error).__name__
            outcome = Text(message, style="red")
        table.add_row(
            str(row.number),
            row.image.name,
            row.face.name,
            "yes" if row.hd else "",
            str(row.task_id) if row.task_id is not None else "-",
            outcome,
        )
    if shown:
        console.print(table)
    failed = len(rows) - succeeded
    style = "red" if failed else "green"
    console.print(
        f"{succeeded} of {len(rows)} succeeded, {failed} failed in {elapsed:.1f}s", style=style
    )
