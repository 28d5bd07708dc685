"""What ``swap_many`` asks its journal: where each job stands, and each step it takes.

The batch calls ``BatchJournal.admit`` for the jobs it reads, then one ``JobEntry`` method at
each step of a job. Without a journal the same calls only count states (``summary()``), so the
batch has one code path. The rules of resuming live here:

- a job found ``submitted`` is waited for, never created again;
- ``uncertain`` (and ``submitting``, which ``open`` turned into it) ends the job with
  ``SubmissionUncertainError``, unless the user chose ``resubmit_uncertain=True``;
- ``succeeded``, ``downloaded``, ``failed`` and ``expired`` jobs end at once, from the record:
  no request is sent for them (a result from the journal fetches a fresh signed URL only when
  it is downloaded);
- a job whose inputs changed since they were recorded is refused (``InputChangedError``).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

import anyio
import attrs

from .._config import Config
from .._errors import (
    APIError,
    InvalidInputError,
    MioCreateError,
    SubmissionUncertainError,
    TaskFailedError,
    UrlExpiredError,
)
from .._models import ImageSwapResult, ProgressCallback, ResultDownloader, VideoSwapResult
from .._transfer._get import StalePartials
from .._transfer._inputs import as_key
from .._version import __version__
from ._interface import (
    ErrorInfo,
    InputChangedError,
    InputRef,
    JobRecord,
    JobState,
    Journal,
    JournalMeta,
    NewJob,
    Summary,
    client_fingerprint,
    describe_input,
    job_identity,
)
from ._spend import SpendTally

__all__ = [
    "Action",
    "BatchJournal",
    "JobEntry",
    "JobLike",
    "ResultFetcher",
    "identify",
    "is_saved_result",
    "saved_file",
]

logger = logging.getLogger("miocreate_async")

SwapResult = ImageSwapResult | VideoSwapResult
S = JobState

#: A resume warns about results that expire sooner than this (seconds).
EXPIRY_WARNING = 24 * 3600.0
#: Codes of refusals that trying again cannot change: the job is recorded failed.
_FINAL_CODES = frozenset({400, 601, 602, 603, 604, 605, 701, 702, 703, 704})


class Action(enum.Enum):
    #: Upload, create, wait (new, pending, uploaded; uncertain when resubmitting by choice).
    RUN = "run"
    #: Its task exists: wait for it.
    WAIT = "wait"
    #: Nothing to do: the outcome is ``result`` or ``error``.
    DONE = "done"


class JobLike(Protocol):
    """What the journal reads of a ``SwapJob``."""

    @property
    def image(self) -> object: ...
    @property
    def face(self) -> object: ...
    @property
    def hd(self) -> bool: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def id(self) -> str | None: ...


class ResultFetcher(Protocol):
    """What a result from the journal needs of the client to be downloaded."""

    @property
    def config(self) -> Config: ...

    async def get_access_url(self, key: str) -> str: ...

    async def download(
        self,
        url: str,
        destination: str | PathLike[str] = ".",
        *,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
        default_name: str | None = None,
        expected_size: int | None = None,
    ) -> Path: ...


@attrs.define(eq=False)
class JobEntry:
    """One job's place in the journal; the batch calls a method at each step."""

    owner: BatchJournal
    #: None without a journal.
    job_id: str | None
    state: JobState
    action: Action
    #: The outcome came from an earlier run (or its task was created by one).
    resumed: bool = False
    task_id: int | None = None
    kind: str | None = None
    result: SwapResult | None = None
    error: MioCreateError | None = None

    async def uploaded(self) -> None:
        if self.state is S.PENDING:
            await self.owner.move(self, S.UPLOADED)

    async def intent(self, kind: str) -> None:
        """Before the creation request: committed durably, or the request is not sent."""
        self.kind = kind
        await self.owner.move(self, S.SUBMITTING, kind=kind)

    async def created(self, task_id: int) -> None:
        self.task_id = task_id
        await self.owner.move(self, S.SUBMITTED, task_id=task_id)

    async def refused(self) -> None:
        """The creation was refused and provably created nothing: back to be submitted."""
        if self.state is S.SUBMITTING and self.task_id is None:
            await self.owner.move(self, S.PENDING)

    async def succeeded(self, result: SwapResult) -> SwapResult:
        """Record the result; returns it as the batch hands it out."""
        if self.owner.journal is None:
            await self.owner.move(self, S.SUCCEEDED)
            return result
        expires = result.expires_at.timestamp() if result.expires_at else None
        await self.owner.move(self, S.SUCCEEDED, result=stored_result(result), expires_at=expires)
        return self.owner.resumed(result) if self.resumed else result

    async def ended(self, error: MioCreateError) -> None:
        """The job ended with ``error``: record what it means for a later run."""
        if isinstance(error, SubmissionUncertainError) and self.state is S.SUBMITTING:
            await self.owner.move(self, S.UNCERTAIN)
        elif _is_final(error) and self.state in (S.PENDING, S.UPLOADED, S.SUBMITTING, S.SUBMITTED):
            await self.owner.move(self, S.FAILED, error=ErrorInfo.of(error))
        elif self.state is S.SUBMITTING and _answered_without_task(error, self.task_id):
            # The service answered the creation with an error code: nothing was created. A
            # later run submits it again.
            await self.owner.move(self, S.PENDING)
        # Otherwise the record stays where it is and a later run picks the job up from there: a
        # timeout while waiting, no credits, a transient upload failure; and, while
        # "submitting", any local failure (the journal, a bug): a task may exist, so the record
        # stays "submitting" and the next open makes it "uncertain", never "pending".

    async def expired(self) -> None:
        await self.owner.move(self, S.EXPIRED)


def saved_file(path: str | PathLike[str]) -> tuple[int, str]:
    """A saved result's size and sha256, as the journal records them (run it off the loop)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def is_saved_result(path: str | PathLike[str], size: int | None, sha256: str | None) -> bool:
    """Whether the file at ``path`` is the recorded result: its size and its sha256 match."""
    if size is None or sha256 is None:
        return False
    try:
        if os.stat(path).st_size != size:
            return False
        return saved_file(path) == (size, sha256)
    except OSError:
        return False


def _absolute(path: str | PathLike[str]) -> str:
    return os.path.abspath(path)


def _answered_without_task(error: MioCreateError, task_id: int | None) -> bool:
    """The at-most-once rule's one way back to "pending": the service itself answered the
    creation with an error code, and no reply ever gave this job a task id."""
    return task_id is None and isinstance(error, APIError)


def _is_final(error: MioCreateError) -> bool:
    if isinstance(error, InputChangedError):
        return False
    if isinstance(error, (TaskFailedError, InvalidInputError)):
        return True
    return isinstance(error, APIError) and error.code in _FINAL_CODES


class BatchJournal:
    """The batch's side of a journal (or, without one, its state counter)."""

    def __init__(
        self,
        journal: Journal | None,
        *,
        client: ResultFetcher,
        client_id: str | None = None,
        resubmit_uncertain: bool = False,
    ) -> None:
        self.journal = journal
        self._meta = JournalMeta(
            base_url=client.config.base_url,
            client=client_fingerprint(client_id),
            library_version=__version__,
        )
        self._client = client
        self._resubmit = resubmit_uncertain
        #: Every job of the journal (this run's and earlier ones'), by state.
        self._counts: Counter[JobState] = Counter()
        self._opened = False
        #: The index of each job id seen in this run: one job, one record.
        self._seen: dict[str, int] = {}
        #: What killed downloads of earlier runs left, removed as their results are fetched.
        self._partials = StalePartials()
        #: The spend report, kept live (earlier runs' records are read at ``open``).
        self._spend = SpendTally()

    @property
    def enabled(self) -> bool:
        return self.journal is not None

    async def open(self) -> Summary:
        if self.journal is None:
            return self.summary()
        found = await self.journal.open(self._meta)
        self._opened = True
        self._counts = Counter({state: n for state, n in found.counts.items() if n})
        self._spend.load([record async for record in self.journal.records(list(JobState))])
        await self._warn_expiring()
        return found

    async def close(self) -> None:
        if self.journal is not None and self._opened:
            self._opened = False
            await self.journal.close()

    def summary(self) -> Summary:
        return Summary(dict(self._counts), spend=self._spend.report())

    async def _warn_expiring(self) -> None:
        assert self.journal is not None
        soon = time.time() + EXPIRY_WARNING
        expiring = []
        async for record in self.journal.records([S.SUCCEEDED], limit=100):
            if record.expires_at is None or record.expires_at > soon:
                break
            expiring.append(record)
        if expiring:
            logger.warning(
                "%d result(s) in the journal expire within 24 hours: download them now "
                "(the first: task %s)",
                len(expiring),
                expiring[0].task_id,
            )

    # --- admission ----------------------------------------------------------------------------

    async def admit(self, jobs: Sequence[tuple[int, JobLike]]) -> list[JobEntry | MioCreateError]:
        """Each job's entry, or the error that refuses it (an input changed, no identity)."""
        if self.journal is None:
            self._counts[S.PENDING] += len(jobs)
            return [JobEntry(self, None, S.PENDING, Action.RUN) for _ in jobs]
        new: list[NewJob] = []
        answers: list[JobEntry | MioCreateError | None] = []
        fingerprints: list[str] = []
        for index, job in jobs:
            try:
                image, face = _describe(job.image), _describe(job.face)
                job_id, fingerprint = job_identity(
                    image, face, hd=job.hd, kind=job.kind, explicit_id=job.id
                )
            except MioCreateError as error:
                answers.append(error)
                continue
            except (ValueError, TypeError, OSError) as exc:
                # One job's input the journal cannot describe ends that job, never the batch.
                refused = InvalidInputError(f"job {index}: its input cannot be journaled: {exc}")
                refused.__cause__ = exc
                answers.append(refused)
                continue
            first = self._seen.setdefault(job_id, index)
            if first != index:
                answers.append(
                    InvalidInputError(
                        f"job {index} is the same as job {first} (same inputs, hd and kind): "
                        "in a journaled batch, give such jobs distinct ids (SwapJob(id=...))"
                    )
                )
                continue
            answers.append(None)
            fingerprints.append(fingerprint)
            new.append(NewJob(job_id, index, fingerprint, f"{image.label} + {face.label}"))
        records = iter(await self.journal.register(new) if new else [])
        expected = iter(fingerprints)
        entries: list[JobEntry | MioCreateError] = []
        for answer in answers:
            if answer is not None:
                entries.append(answer)
                continue
            record, fingerprint = next(records), next(expected)
            entries.append(await self._entry(record, fingerprint))
        return entries

    async def _entry(self, record: JobRecord, fingerprint: str) -> JobEntry | MioCreateError:
        if record.fingerprint != fingerprint:
            return InputChangedError(
                f"an input of job {record.id} ({record.label}) changed since the journal "
                f"recorded it ({record.state.value}); not resumed: give the changed files "
                "new names, or use another journal",
                task_id=record.task_id,
            )
        if record.new:
            self._counts[S.PENDING] += 1
        entry = JobEntry(
            self,
            record.id,
            record.state,
            Action.RUN,
            resumed=record.state.paid,
            task_id=record.task_id,
            kind=record.kind,
        )
        if record.state in (S.PENDING, S.UPLOADED):
            return entry
        if record.state is S.SUBMITTED:
            entry.action = Action.WAIT
            return entry
        if record.state is S.UNCERTAIN and self._resubmit:
            return entry
        entry.action = Action.DONE
        if record.state is S.UNCERTAIN:
            entry.error = SubmissionUncertainError(
                "an earlier run sent this job's creation request but recorded no reply: a task "
                "may exist and be paid for. The API cannot list tasks, so it is not sent again "
                "unless you choose to (resubmit_uncertain=True, which may pay twice)",
                operation="task_create",
            )
        elif record.state is S.FAILED:
            info = record.error or ErrorInfo("MioCreateError", "failed in an earlier run")
            entry.error = _restored_error(info, record.task_id)
        elif record.state is S.EXPIRED or _expired(record):
            if record.state is S.SUCCEEDED:
                await entry.expired()
            entry.error = UrlExpiredError(
                f"the result of task {record.task_id} expired before it was downloaded",
                task_id=record.task_id,
            )
        else:  # succeeded, downloaded
            entry.result = self.resumed(restored_result(record, self._client))
        return entry

    def resumed(self, result: SwapResult) -> SwapResult:
        """A result of a job an earlier run took on: a download of it first removes the
        temporary files that run's killed download to the same place left."""
        if result._downloader is None:
            return result
        return attrs.evolve(result, downloader=_StaleFirst(result._downloader, self._partials))

    async def downloaded(self, job_id: str, path: str | PathLike[str]) -> None:
        """The result of a succeeded job is saved at ``path`` (a no-op if it was already)."""
        if self.journal is None:
            return
        record = await self.journal.get(job_id)
        if record is None or record.state is not S.SUCCEEDED:
            return
        size, sha256 = await anyio.to_thread.run_sync(saved_file, path)
        await self.move(
            JobEntry(self, job_id, S.SUCCEEDED, Action.DONE),
            S.DOWNLOADED,
            path=_absolute(path),
            saved_size=size,
            saved_sha256=sha256,
        )

    async def move(self, entry: JobEntry, state: JobState, **fields: Any) -> None:
        if self.journal is not None and entry.job_id is not None:
            await self.journal.transition(entry.job_id, entry.state, state, **fields)
        known = {"kind": entry.kind, "task_id": entry.task_id, **fields}
        self._spend.moved(entry.job_id if entry.job_id is not None else entry, state, known)
        self._counts[entry.state] -= 1
        self._counts[state] += 1
        entry.state = state


def identify(job: JobLike) -> tuple[str, str]:
    """The job's id and its inputs' fingerprint, as a journal records them."""
    image, face = _describe(job.image), _describe(job.face)
    return job_identity(image, face, hd=job.hd, kind=job.kind, explicit_id=job.id)


def _describe(source: object) -> InputRef:
    try:
        key = as_key(source)
    except MioCreateError:
        key = None  # a missing file: its upload reports it
    return describe_input(source, key)


def _expired(record: JobRecord) -> bool:
    return (
        record.state is S.SUCCEEDED
        and record.expires_at is not None
        and record.expires_at <= time.time()
    )


def _restored_error(info: ErrorInfo, task_id: int | None) -> MioCreateError:
    """The recorded error as its own type where the library has it, else the base class."""
    from .. import _errors

    cls = getattr(_errors, info.type, None)
    if not (isinstance(cls, type) and issubclass(cls, MioCreateError)):
        cls = MioCreateError
    return cls(info.message, code=info.code, task_id=task_id)


@attrs.frozen
class _StaleFirst:
    """A downloader that removes a destination's stale temporary files before downloading."""

    download: ResultDownloader
    partials: StalePartials

    async def __call__(
        self,
        url: str,
        destination: str | PathLike[str],
        *,
        default_name: str,
        overwrite: bool,
        progress: ProgressCallback | None,
        expected_size: int | None = None,
    ) -> Path:
        await anyio.to_thread.run_sync(self.partials.remove, destination, default_name)
        return await self.download(
            url,
            destination,
            default_name=default_name,
            overwrite=overwrite,
            progress=progress,
            expected_size=expected_size,
        )


# --- results without their signed URLs ------------------------------------------------------


def stored_result(result: SwapResult) -> dict[str, Any]:
    """The result as the journal keeps it: keys, sizes and dimensions, no signed URL."""
    from .._converter import unstructure

    data: dict[str, Any] = unstructure(result)
    return {
        "type": "video" if isinstance(result, VideoSwapResult) else "image",
        **{name: value for name, value in data.items() if not name.endswith("_url")},
    }


def restored_result(record: JobRecord, client: ResultFetcher) -> SwapResult:
    """The recorded result; ``download()`` fetches a fresh signed URL for its key."""
    from .._converter import structure

    assert record.result is not None
    data: Mapping[str, Any] = record.result
    cls: type[SwapResult] = VideoSwapResult if data.get("type") == "video" else ImageSwapResult
    fields = {name: value for name, value in data.items() if name != "type"}
    result = structure({**fields, "merge_url": ""}, cls, what="the journal's result")
    expires = record.expires_at
    return attrs.evolve(
        result,
        expires_at=None if expires is None else datetime.fromtimestamp(expires, timezone.utc),
        downloader=_FreshUrl(client, result.merge_key),
    )


@attrs.frozen
class _FreshUrl:
    """A result's downloader that first asks for a signed URL of its key (a free request)."""

    client: ResultFetcher
    key: str

    async def __call__(
        self,
        url: str,
        destination: str | PathLike[str],
        *,
        default_name: str,
        overwrite: bool,
        progress: ProgressCallback | None,
        expected_size: int | None = None,
    ) -> Path:
        fresh = await self.client.get_access_url(self.key)
        return await self.client.download(
            fresh,
            destination,
            default_name=default_name,
            overwrite=overwrite,
            progress=progress,
            expected_size=expected_size,
        )
