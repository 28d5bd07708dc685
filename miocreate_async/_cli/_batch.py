"""``miocreate batch``: a folder of images and videos with one face, or a CSV of jobs, run
through ``swap_many`` end to end with live progress bars (fed by its events), downloaded as
results arrive, then summed up in a table. The exit status is 0 only when every job succeeded.

``swap_many`` uploads each distinct file once (a bar for the bytes), tells images from videos by
their content, and runs the swaps (a bar for the tasks, one for the downloads). A job whose
upload failed is reported failed and never submitted. Outputs are
``<output>/<input stem>-swapped.<ext>``; existing ones are refused before anything is spent,
unless ``--overwrite``.

The batch keeps a journal (``<output>/.miocreate-journal.sqlite``, or ``--journal``): running
the same command again resumes it. It says so first ("resuming: 812 done, 40 in flight,
3 uncertain, 145 to do"), downloads the results waiting (soonest-expiring first), waits for the
tasks created, and never sends an uncertain job again unless ``--resubmit-uncertain``. Ctrl-C or
SIGTERM stops it cleanly and lists what was paid for and not saved; a second one exits at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import attrs

from .._batch import BatchEvent, SwapJob, SwapOutcome, SwapResults, TaskCreated, UploadProgress
from .._client import MioCreate
from .._errors import SubmissionUncertainError
from .._formats import ACCEPTED_EXTENSIONS, is_video_name
from .._journal import JobRecord, JobState, SQLiteJournal, Summary
from .._journal._tracker import identify, is_saved_result, saved_file
from .._transfer._get import PARTIAL_EXTRA, fit_name, name_max, partial_owner
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
from ._console import log_sink, stderr_console, stdout_console
from ._emulator import EXIT_INTERRUPTED
from ._journal import DEFAULT_NAME
from ._spend import add_spend_options, dry_run, max_tasks_of
from ._steps import Interrupt
from ._worker import add_redis, check_extra, durability

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from rich.progress import Progress

    from ..distributed._journal import RedisJournal
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
    #: Its result or its task came from an earlier run (the journal).
    resumed: bool = False
    #: The size and sha256 the journal recorded of its saved result, if any.
    saved: tuple[int, str] | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None and self.error is None

    def target(self, result: SwapResult) -> Path:
        """Where its result is saved: the stem with the result's real extension."""
        return self.stem.with_name(self.stem.name + suffix_of(result))

    @property
    def status(self) -> str:
        if self.ok:
            return "succeeded"
        return "uncertain" if isinstance(self.error, SubmissionUncertainError) else "failed"

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
            "status": self.status,
            "resumed": self.resumed,
            "task_id": self.task_id,
            "path": str(self.path.resolve()) if self.path else None,
            "error": error,
        }


# --- the jobs ----------------------------------------------------------------------------------

#: Bytes kept for a result's extension (``.jpg``, ``.webm``) after an output's stem.
SUFFIX_ROOM = 16


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
        _check_csv(source)
        pairs = _read_csv(source, face, hd)
    else:
        raise CliError(f"no such folder or CSV file: {source}")
    rows = []
    used: set[str] = set()
    # Every output and its temporary name must fit the file system: checked (and shortened)
    # here, before anything is paid, not when a result that cannot be saved is downloaded.
    limit = name_max(output) - PARTIAL_EXTRA - SUFFIX_ROOM
    for number, (image, new_face, row_hd) in enumerate(pairs, 1):
        stem = _unique_stem(output, image, used, limit)
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


#: What ``batch`` takes, for the refusals of anything else.
_TAKES = (
    "batch takes a folder of images and videos (with --face) or a CSV file of jobs, one "
    "image,face[,hd] per line"
)


def _check_csv(source: Path) -> None:
    """Refuse, as a usage error, a file that is not a CSV of jobs: one image or video (say
    which command swaps it), or a binary file."""
    kind = is_video_name(source.name)
    if kind is not None:
        command = "swap-video" if kind else "swap"
        raise CliError(
            f"{source} is {'a video' if kind else 'an image'}: {_TAKES}. For one file, use "
            f"`miocreate {command} {source} --face FACE`"
        )
    with source.open("rb") as file:
        head = file.read(4096)
    if b"\0" in head:  # text never holds one
        raise CliError(f"{source} is not a CSV text file: {_TAKES}")


def _delimiter(text: str) -> str:
    """``,`` or, for a CSV saved by a spreadsheet in a locale that writes decimal commas, ``;``:
    whichever the first line of jobs holds more of."""
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return ";" if line.count(";") > line.count(",") else ","
    return ","


def _read_csv(
    source: Path, default_face: Path | None, default_hd: bool
) -> list[tuple[Path, Path, bool]]:
    base = source.parent
    pairs = []
    try:
        with source.open(newline="", encoding="utf-8-sig") as file:
            text = file.read()
    except UnicodeDecodeError:
        raise CliError(f"{source} is not UTF-8 text: save the CSV as UTF-8 ({_TAKES})") from None
    delimiter = _delimiter(text)
    columns = "image;face[;hd]" if delimiter == ";" else "image,face[,hd]"
    for line, record in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1):
        cells = [cell.strip() for cell in record]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if line == 1 and cells[0].lower() in _HEADERS:
            continue
        where = f"{source.name}, line {line}"
        if len(cells) > 3:
            raise CliError(f"{where}: expected {columns}, got {len(cells)} columns")
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


def _unique_stem(output: Path, image: Path, used: set[str], limit: int) -> Path:
    """``<image stem>-swapped`` (``-2``... for a name taken), shortened with a hash of it when
    longer than ``limit`` bytes (the same every run, so a resumed batch finds its outputs)."""
    base = f"{image.stem}-swapped"
    name, count = fit_name(base, limit), 1
    while name.lower() in used:
        count += 1
        name = fit_name(f"{base}-{count}", limit)
    used.add(name.lower())
    return output / name


# --- running it --------------------------------------------------------------------------------


def _progress(disable: bool) -> tuple[Progress, Callable[[str], None]]:
    """The batch's bars, and a setter of the status line drawn under them (retries)."""
    from rich.console import RenderableType
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class _Eta(ProgressColumn):
        """The time left, on the rows that ask for it (the tasks)."""

        def render(self, task: Task) -> Text:
            if not task.fields.get("eta") or task.finished:
                return Text("")
            left = task.time_remaining
            shown = "-:--:--" if left is None else _clock(left)
            return Text(f"ETA {shown}", style="progress.remaining")

    status: list[Text] = []

    class _Bars(Progress):
        def get_renderables(self) -> Iterable[RenderableType]:
            yield from super().get_renderables()
            yield from status

    def show(line: str) -> None:
        # "upload failed: <why>; retrying (retry 2 in 0.5s)": what happens first, the cause
        # after (a narrow terminal cuts the end of the line).
        cause, found, retry = line.rpartition("; retrying (")
        if found:
            line = f"retrying ({retry} {cause}"
        status[:] = [Text(line, style="yellow", overflow="ellipsis", no_wrap=True)]

    bars = _Bars(
        SpinnerColumn(),
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        _Eta(),
        console=stderr_console(),
        disable=disable,
    )
    return bars, show


def _clock(seconds: float) -> str:
    minutes, second = divmod(math.ceil(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"


class _Run:
    """The swaps through ``swap_many`` (which uploads each distinct file once), each result
    downloaded as it arrives and recorded in the journal once saved."""

    def __init__(
        self, client: MioCreate, rows: list[Row], options: Options, bars: Progress
    ) -> None:
        self.client = client
        self.rows = rows
        self.bars = bars
        self.overwrite = options.overwrite
        self.concurrency = options.count("concurrency")
        self.timeout = options.number("timeout")
        self.resubmit = options.flag("resubmit_uncertain")
        self.max_tasks = max_tasks_of(options)
        #: Tasks created whose result is not saved (for the report of an interruption).
        self.unsaved: dict[int, Row] = {}
        #: Rows to run: those a journal knows to be saved are done already.
        self.todo = [row for row in rows if not row.ok]
        files = {path.resolve() for row in self.todo for path in (row.image, row.face)}
        self.sizes = {path: _size(path) for path in files}
        #: Bytes sent of each file, and the files whose upload ended.
        self.sent: dict[Path, int] = {}
        self.uploaded: set[Path] = set()
        self.uploads = bars.add_task(
            "uploads", total=sum(self.sizes.values()) or None, detail=f"0/{len(files)} files"
        )
        self.succeeded = len(rows) - len(self.todo)
        self.failed = 0
        #: Tasks created whose outcome has not come yet.
        self.in_flight: set[int] = set()
        self.tasks = bars.add_task(
            "tasks", total=len(rows), completed=self.succeeded, detail=self._tally(), eta=True
        )
        self.downloads = bars.add_task("downloads", total=len(self.todo) or None, detail="")

    def event(self, event: BatchEvent) -> None:
        """``swap_many``'s events: the bytes of the uploads move the uploads bar; the tasks
        created count as in flight until their outcome."""
        if isinstance(event, TaskCreated):
            self.in_flight.add(event.task_id)
            self.bars.update(self.tasks, detail=self._tally())
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

    async def swap(self, journal: Path | None) -> None:
        if not self.todo:
            return
        todo = self.todo
        jobs = [SwapJob(media=row.image, face=row.face, hd=row.hd) for row in todo]
        # The downloads end before the batch does: each is recorded in its journal.
        async with (
            self.client.swap_many(
                jobs,
                concurrency=self.concurrency,
                timeout=self.timeout,
                journal=journal,
                resubmit_uncertain=self.resubmit,
                events=self.event,
                max_tasks=self.max_tasks,
            ) as results,
            anyio.create_task_group() as group,
        ):
            try:
                async for outcome in results:
                    row = todo[outcome.index]
                    row.task_id = outcome.task_id
                    row.resumed = outcome.resumed
                    self.in_flight.discard(outcome.task_id or 0)
                    self.bars.advance(self.tasks)
                    self.bars.update(self.tasks, detail=self._tally())
                    if outcome.result is None:
                        self._failed(row, outcome.error or RuntimeError("no result"))
                    else:
                        self.unsaved[result_task(outcome)] = row
                        group.start_soon(self._fetch, row, outcome, results)
            finally:
                # Created, not handed out (an interruption): paid for, not saved.
                for task_id, job_index in _pending(results, jobs).items():
                    self.unsaved.setdefault(task_id, todo[job_index])
        # Files that failed their checks or upload sent no more bytes: the bar is done anyway.
        self.sent.update(self.sizes)
        self._uploads_moved()

    async def _fetch(self, row: Row, outcome: SwapOutcome, results: SwapResults) -> None:
        result = outcome.result
        assert result is not None
        try:
            target = row.target(result)
            if outcome.resumed and not self.overwrite and _saved(target, result.size):
                # Saved by a run that stopped before recording it, or a file of the user's of
                # the same size: the result's own bytes tell.
                path = await _same_result(result, target, row.saved)
            else:
                path = await result.download(target, overwrite=self.overwrite)
            await results.mark_downloaded(outcome, path)
            row.path = path
        except Exception as error:
            self._failed(row, error)
            return
        self.unsaved.pop(result_task(outcome), None)
        self.succeeded += 1
        self.bars.advance(self.downloads)
        self.bars.update(self.tasks, detail=self._tally())

    def _failed(self, row: Row, error: BaseException) -> None:
        row.error = error
        self.failed += 1
        self.bars.advance(self.downloads)
        self.bars.update(self.tasks, detail=self._tally())

    def _tally(self) -> str:
        return f"{len(self.in_flight)} in flight, {_tally(self.succeeded, self.failed)}"


async def _run_distributed(
    client: MioCreate, rows: list[Row], options: Options, bars: Progress, output: Path, run: _Run
) -> None:
    """The batch on the workers of a Redis (``miocreate worker``): inputs by their paths on the
    shared file system; results downloaded here as they arrive, from whichever worker, each
    recorded in the shared journal once saved (size and sha256, as the local journal does).

    Results an earlier run read and did not save are taken from the journal's records (the
    outcomes it read are not handed out again); an interruption lists what the workers created
    and nobody saved."""
    check_extra()
    from ..distributed import DistributedBatch, DistributedOutcome

    bars.update(run.uploads, visible=False)  # the workers upload, not this machine
    name = _redis_batch(options, output)
    _say(options, f"distributed batch {name} (miocreate journal status --batch {name} --redis ...)")
    if not run.todo:
        return
    jobs = [_remote_job(row) for row in run.todo]
    waiting = dict(zip(_remote_ids(jobs), run.todo, strict=True))
    by_id = dict(waiting)

    async with DistributedBatch(
        options.text("redis"),
        batch=name,
        base_url=client.config.base_url,
        timeout=options.number("timeout"),
        client=client,
        durability=durability(options),
        max_tasks=max_tasks_of(options),
    ) as batch:

        async def fetch(job_id: str, row: Row, outcome: DistributedOutcome) -> None:
            result = outcome.result
            assert result is not None
            try:
                target = row.target(result)
                if not run.overwrite and _saved(target, result.size):
                    # Saved by a run that stopped before recording it: its bytes tell.
                    path = await _same_result(result, target, row.saved)
                else:
                    path = await result.download(target, overwrite=run.overwrite)
                size, sha256 = await anyio.to_thread.run_sync(saved_file, path)
                fields: dict[str, str | int | float] = {
                    "path": str(path),
                    "saved_size": size,
                    "saved_sha256": sha256,
                }
                done = (JobState.SUCCEEDED, JobState.DOWNLOADED)
                await batch.journal.move(
                    job_id, "*", done, JobState.DOWNLOADED, lease=0, fields=fields
                )
                row.path = path
            except Exception as error:
                run._failed(row, error)
                return
            run.succeeded += 1
            bars.advance(run.downloads)
            bars.update(run.tasks, detail=_remote_tally(batch.summary(), run))

        def handle(job_id: str, outcome: DistributedOutcome, group: TaskGroup) -> None:
            row = waiting.pop(job_id)
            row.task_id = outcome.task_id
            row.resumed = outcome.resumed
            bars.advance(run.tasks)
            if outcome.result is None:
                run._failed(row, outcome.error or RuntimeError(f"job ended {outcome.state}"))
            else:
                group.start_soon(fetch, job_id, row, outcome)

        async def progress() -> None:
            # Live counts from the shared journal: what every worker is doing.
            while True:
                bars.update(run.tasks, detail=_remote_tally(await batch.refresh(), run))
                await anyio.sleep(1)

        try:
            async with anyio.create_task_group() as live:
                live.start_soon(progress)
                # The downloads end with this group: each is recorded in the journal.
                async with anyio.create_task_group() as group:
                    await batch.submit(jobs)
                    for job_id in list(waiting):
                        found = await batch.outcome(job_id)
                        if found is not None:  # ended before: read (or not) by an earlier run
                            handle(job_id, found, group)
                    if waiting:
                        async for outcome in batch.outcomes():
                            if outcome.job_id in waiting:
                                handle(outcome.job_id, outcome, group)
                            if not waiting:
                                break
                    # (Outcomes an earlier run read of jobs it resubmitted: from the records.)
                    while waiting:
                        for job_id in list(waiting):
                            found = await batch.outcome(job_id)
                            if found is not None:
                                handle(job_id, found, group)
                        await anyio.sleep(1)
                live.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await _created_unsaved(batch.journal, by_id, run.unsaved)


def _remote_job(row: Row) -> SwapJob:
    """The job as the workers read it: absolute paths on the shared file system."""
    return SwapJob(row.image.resolve(), row.face.resolve(), hd=row.hd)


def _remote_ids(jobs: list[SwapJob]) -> list[str]:
    from ..distributed._codec import encode_job

    return [encode_job(job)[0] for job in jobs]


def _redis_batch(options: Options, output: Path) -> str:
    return options.optional_text("batch_name") or _batch_name(output)


def _remote_tally(summary: Summary, run: _Run) -> str:
    queued = summary[JobState.PENDING] + summary[JobState.UPLOADED]
    busy = summary[JobState.SUBMITTING] + summary[JobState.SUBMITTED]
    return f"{queued} queued, {busy} in flight, {_tally(run.succeeded, run.failed)}"


async def _remote_records(
    rows: list[Row], options: Options, output: Path, base_url: str
) -> tuple[list[tuple[str, str]], dict[str, JobRecord]]:
    """The ids and fingerprints of the rows as the distributed batch knows them, and the
    batch's records of them (a batch of another host is refused, as a local journal is)."""
    check_extra()
    from redis.asyncio import Redis

    from ..distributed._codec import encode_job
    from ..distributed._journal import RedisJournal

    keys = [encode_job(_remote_job(row))[:2] for row in rows]
    redis = Redis.from_url(options.text("redis"), decode_responses=True)
    try:
        journal = RedisJournal(redis, _redis_batch(options, output))
        meta = await journal.meta()
        if meta is None:
            return keys, {}
        where = f"the distributed batch {journal.batch!r}"
        meta.check(attrs.evolve(meta, base_url=base_url, client=""), where)
        found = await journal.get_many([job_id for job_id, _ in keys])
    finally:
        await redis.aclose()
    return keys, {record.id: record for record in found if record is not None}


async def _created_unsaved(
    journal: RedisJournal, by_id: dict[str, Row], unsaved: dict[int, Row]
) -> None:
    """The tasks the workers created for these rows whose results are not saved here."""
    ids = [job_id for job_id, row in by_id.items() if not row.ok]
    for record in await journal.get_many(ids):
        if record is None or record.task_id is None:
            continue
        if record.state in (JobState.SUBMITTED, JobState.SUCCEEDED):
            unsaved[record.task_id] = by_id[record.id]


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


def result_task(outcome: SwapOutcome) -> int:
    assert outcome.task_id is not None
    return outcome.task_id


def _pending(results: SwapResults, jobs: list[SwapJob]) -> dict[int, int]:
    """Tasks created whose outcome was not handed out: task id -> index in ``jobs``."""
    where = {id(job): index for index, job in enumerate(jobs)}
    return {task: where[id(job)] for task, job in results.pending_tasks().items()}


async def _same_result(result: SwapResult, target: Path, saved: tuple[int, str] | None) -> Path:
    """``target`` if it holds exactly the result's bytes; else refuse to take it (or replace
    it): it is not this job's output.

    The journal's record of the saved file (size and sha256) tells; without one (killed before
    that record was committed), the result is fetched again to compare (a free download)."""
    if saved is not None:
        same = await anyio.to_thread.run_sync(is_saved_result, target, *saved)
    else:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".miocreate-check-") as folder:
            fresh = await result.download(Path(folder) / target.name)
            same = await anyio.to_thread.run_sync(lambda: saved_file(fresh) == saved_file(target))
    if not same:
        raise CliError(
            f"the output exists: {target}, and it is not this job's result (same size, other "
            "content): pass --overwrite to replace it, or choose another --output",
            status=1,
            kind="OutputExistsError",
        )
    return target


def _saved(target: Path, size: int) -> bool:
    try:
        return target.stat().st_size == size
    except OSError:
        return False


def prepare(options: Options) -> tuple[list[Row], Path]:
    """The jobs and the output folder (existing outputs are checked by ``_resume``)."""
    output = Path(options.text("output")).expanduser()
    face_text = options.optional_text("face")
    face = Path(face_text).expanduser() if face_text else None
    rows = load_jobs(Path(options.text("source")).expanduser(), face, options.flag("hd"), output)
    return rows, output


def _journal_path(options: Options, output: Path) -> Path | None:
    if options.flag("no_journal"):
        return None
    chosen = options.optional_text("journal")
    return Path(chosen).expanduser() if chosen else output / DEFAULT_NAME


async def _resume(
    rows: list[Row],
    journal: Path | None,
    options: Options,
    base_url: str,
    remote: tuple[list[tuple[str, str]], dict[str, JobRecord]] | None = None,
) -> list[Row]:
    """Match the rows to the journal's records; say what a resume finds; refuse existing
    outputs of jobs not known to be done. Returns the rows in the order to run them: results
    waiting to be downloaded first, soonest-expiring first."""
    records: dict[str, JobRecord] = {}
    if journal is not None and await anyio.Path(journal).is_file():
        meta, found = await SQLiteJournal.read(journal)
        # Another host is refused before anything is said or checked (swap_many checks the
        # account too). No meta: a run killed before its first commit, nothing recorded.
        if meta is not None:
            meta.check(attrs.evolve(meta, base_url=base_url, client=""), f"the journal {journal}")
        records = {record.id: record for record in found}
    if remote is not None:  # a distributed batch: its records in Redis
        keys, records = remote
    else:
        keys = [identify(SwapJob(image=row.image, face=row.face, hd=row.hd)) for row in rows]
    ids = [job_id for job_id, _ in keys]
    mine = [records[job_id] for job_id in ids if job_id in records]
    if mine:
        counts = Counter(record.state for record in mine)
        summary = Summary(counts, downloads=True, unrecorded=len(rows) - len(mine))
        _say(options, f"resuming: {summary}")
        _warn_expiring(options, mine)
        if options.flag("resubmit_uncertain") and summary.uncertain:
            _confirm_resubmit(options, summary.uncertain)
    order: list[tuple[float, int, Row]] = []
    existing = []
    for number, (row, (job_id, fingerprint)) in enumerate(zip(rows, keys, strict=True)):
        record = records.get(job_id)
        if record is not None and record.fingerprint != fingerprint:
            record = None  # an input changed: swap_many refuses the job
        state = record.state if record else None
        if record is not None and record.saved_size is not None and record.saved_sha256:
            row.saved = (record.saved_size, record.saved_sha256)
        if record is not None and state is JobState.DOWNLOADED and record.path:
            # The recorded file, by its size and content: not a file that took its name since.
            saved = await anyio.to_thread.run_sync(
                is_saved_result, record.path, record.saved_size, record.saved_sha256
            )
            if saved:
                row.path, row.task_id, row.resumed = Path(record.path), record.task_id, True
                continue
        # A task of an earlier run may have been saved before its result was committed (free
        # changes are grouped): that file may be the batch's own, compared with the result by
        # content when resumed.
        if state not in _OWN_OUTPUT and not options.overwrite:
            other = taken(row.stem)
            if other is not None:
                existing.append(other)
        expires = record.expires_at if record and state is JobState.SUCCEEDED else None
        order.append((expires if expires is not None else math.inf, number, row))
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise CliError(
            f"the output exists: {existing[0]}{more} (pass --overwrite, or choose another --output)"
        )
    _remove_partials(rows)
    return [row for row in rows if row.ok] + [row for _, _, row in sorted(order)]


#: States whose output, if there, a killed run of this batch may have written.
_OWN_OUTPUT = frozenset({JobState.SUBMITTED, JobState.SUCCEEDED})


def _say(options: Options, line: str, style: str | None = None) -> None:
    stderr_console().print(line, style=style, highlight=False)


def _warn_expiring(options: Options, records: list[JobRecord]) -> None:
    soon = time.time() + 24 * 3600
    expiring = [
        r for r in records if r.state is JobState.SUCCEEDED and r.expires_at and r.expires_at < soon
    ]
    if expiring:
        _say(
            options,
            f"warning: {len(expiring)} result(s) expire within 24 hours; they are downloaded first",
            "yellow",
        )


def _confirm_resubmit(options: Options, count: int) -> None:
    message = (
        f"--resubmit-uncertain: {count} job(s) are uncertain: their creation request may have "
        "reached the service and been paid for (the API cannot list tasks to check). Sending "
        "them again may pay twice."
    )
    _say(options, message, "yellow")
    if options.json or not sys.stdin.isatty():
        return
    answer = input("Send them again? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("not resubmitted (run without --resubmit-uncertain to leave them)", 1)


def _remove_partials(rows: list[Row]) -> None:
    """The temporary files of downloads a killed run left next to the outputs."""
    stems = {row.stem.name for row in rows}
    for folder in {row.stem.parent for row in rows}:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            owner = partial_owner(entry.name)
            if owner is not None and Path(owner).stem in stems:
                entry.unlink(missing_ok=True)


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
    journal = parser.add_mutually_exclusive_group()
    journal.add_argument(
        "--journal",
        metavar="PATH",
        help=f"where the batch records its progress (default: <output>/{DEFAULT_NAME}); "
        "running the same command again resumes",
    )
    journal.add_argument(
        "--no-journal", action="store_true", help="keep no journal (a rerun pays again)"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars; the summary lists the failed jobs only (for large batches)",
    )
    parser.add_argument(
        "--resubmit-uncertain",
        action="store_true",
        help="send again the jobs whose creation request may have been paid for without an "
        "answer (may pay twice; not with --redis)",
    )
    add_spend_options(parser)


async def run_batch(options: Options) -> int:
    rows, output = prepare(options)
    distributed = bool(options.optional_text("redis"))
    if distributed and options.flag("resubmit_uncertain"):
        # Refused rather than ignored: its workers never send an uncertain job again.
        raise CliError(
            "--resubmit-uncertain does not work with --redis: a distributed batch never sends "
            "an uncertain job again (list them, with the task ids known, by `miocreate journal "
            "status --redis URL --batch NAME`)"
        )
    # A distributed batch keeps its journal in the Redis.
    journal = None if distributed else _journal_path(options, output)
    if options.flag("dry_run"):
        jobs = [SwapJob(media=row.image, face=row.face, hd=row.hd) for row in rows]
        return await dry_run(jobs, journal, options)
    client = make_client(options)
    remote = None
    if distributed:
        remote = await _remote_records(rows, options, output, client.config.base_url)
    ordered = await _resume(rows, journal, options, client.config.base_url, remote)
    started = time.monotonic()
    interrupted = False
    quiet = options.flag("quiet")
    bars, status = _progress(disable=options.json or quiet)
    # On a terminal, a retry is a line under the bars (elsewhere a line on stderr, as always).
    log_sink(status if bars.console.is_terminal and not bars.disable else None)
    async with client:
        with bars, Interrupt() as stop:
            run = _Run(client, ordered, options, bars)
            with stop.scope:
                try:
                    if distributed:
                        await _run_distributed(client, ordered, options, bars, output, run)
                    else:
                        await run.swap(journal)
                finally:
                    log_sink(None)
            interrupted = stop.scope.cancel_called
    elapsed = time.monotonic() - started
    if interrupted:
        return _interrupted(options, rows, run.unsaved, journal, distributed=distributed)
    succeeded = sum(row.ok for row in rows)
    if options.json:
        print_json(
            {
                "total": len(rows),
                "succeeded": succeeded,
                "failed": len(rows) - succeeded,
                "resumed": sum(row.resumed for row in rows),
                "seconds": round(elapsed, 3),
                "output": output.resolve(),
                "journal": journal.resolve() if journal else None,
                "jobs": [row.as_json() for row in rows],
            }
        )
    else:
        _summary(rows, succeeded, elapsed, failures_only=quiet)
    return 0 if succeeded == len(rows) else 1


def _interrupted(
    options: Options,
    rows: list[Row],
    unsaved: dict[int, Row],
    journal: Path | None,
    *,
    distributed: bool = False,
) -> int:
    """What was paid for and not saved, and how to get it."""
    if distributed:
        advice = (
            "the workers go on with the batch; running the same command again resumes and "
            "downloads the results: nothing is paid twice"
        )
    elif journal is not None:
        advice = "running the same command again resumes: nothing is paid twice"
    else:
        advice = "no journal: collect each with `miocreate task TASK_ID --wait -o FOLDER`"
    tasks = [
        {"task_id": task_id, "image": str(row.image), "output": str(row.stem)}
        for task_id, row in sorted(unsaved.items())
    ]
    if options.json:
        print_json(
            {
                "interrupted": True,
                "saved": sum(row.ok for row in rows),
                "total": len(rows),
                "paid_not_saved": tasks,
                "journal": journal.resolve() if journal else None,
                "resume": advice,
            }
        )
    else:
        console = stderr_console()
        console.print(
            f"interrupted: {sum(row.ok for row in rows)} of {len(rows)} saved; "
            f"{len(tasks)} task(s) created and not saved",
            style="yellow",
        )
        for task in tasks[:_TABLE_ROWS]:
            console.print(f"  task {task['task_id']}: {task['image']}")
        if len(tasks) > _TABLE_ROWS:
            console.print(f"  ... and {len(tasks) - _TABLE_ROWS} more")
        console.print(advice)
    return EXIT_INTERRUPTED


#: Larger batches list only their failed jobs in the summary table.
_TABLE_ROWS = 50


def _summary(rows: list[Row], succeeded: int, elapsed: float, *, failures_only: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    console = stdout_console()
    every = len(rows) <= _TABLE_ROWS and not failures_only
    shown = rows if every else [row for row in rows if not row.ok]
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
