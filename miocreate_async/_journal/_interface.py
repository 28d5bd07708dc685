"""The journal's contract: what every journal keeps (SQLite here, Redis for shared batches).

A journal holds one record per job of a batch, keyed by the job's id (``SwapJob.id``, or one
derived from its inputs by ``job_identity``), so that a batch run again after a crash resumes
instead of paying again. Each record moves through these states; every change is one atomic
transaction that checks the state it expects (a shared journal also checks its owner's epoch)::

    pending ──> uploaded ──> SUBMITTING ──> SUBMITTED ──> succeeded ──> downloaded
       ^            |         |    |  |        |   |          |
       |            v         |    |  v        |   v          v
       +------- (refused, ----+    |  failed <-+   (still     expired
                nothing created)   v                running:
                                 uncertain ──(resubmit by choice)──> SUBMITTING

- ``pending``: known, nothing done yet (or a refusal that provably created nothing: 802, HTTP
  429, no connection). Free.
- ``uploaded``: its inputs are stored. Free: uploads are simply redone after a crash.
- ``submitting``: the INTENT. Committed durably (it survives a power cut) BEFORE the
  task-creating request is sent. This is the only record that stands for money that may have
  been spent without the journal knowing the task.
- ``submitted``: the reply came; the task id is committed durably at once. Paid. From here a
  job is only ever waited for (polls are free), never created again.
- ``succeeded``: the task ended with a result; the record keeps its storage keys, sizes and
  expiry (results live 7 days), never its signed URLs.
- ``downloaded``: the result is saved on disk (the CLI), with the file's size and sha256. Final.
- ``failed``: the job cannot succeed by trying again (the task failed, the input is bad, the
  service refused the creation). Final; the record keeps the typed error's name, message, code.
- ``uncertain``: a creation request may have reached the service but no reply was recorded (a
  ``submitting`` record found by a later run, or a connection cut after sending). The API cannot
  list tasks, so nobody can tell whether it was paid: it is never re-sent automatically, only by
  the user's explicit choice (``resubmit_uncertain=True``), which may pay twice.
- ``expired``: it succeeded, but its result expired before it was downloaded. Final; the
  task id is kept.

Transitions into or out of ``submitting``, and into ``submitted``, are committed durably
before the call returns (``is_durable``); a journal may group the commits of the other (free)
ones, which a crash may lose: the work they record is redone at no cost.

A journal never stores the client secret, a token or a signed URL. Its ``JournalMeta`` records
the base URL, a fingerprint of the client id, the library and schema versions: resuming against
another host or account is refused (``JournalMismatchError``).
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from .._errors import InvalidInputError, MioCreateError
from .._redact import unsigned_url

if TYPE_CHECKING:
    from ._report import SpendReport

__all__ = [
    "SCHEMA_VERSION",
    "ErrorInfo",
    "InputChangedError",
    "InputRef",
    "JobRecord",
    "JobState",
    "Journal",
    "JournalError",
    "JournalMeta",
    "JournalMismatchError",
    "JournalStateError",
    "NewJob",
    "Summary",
    "TRANSITIONS",
    "client_fingerprint",
    "describe_input",
    "is_durable",
    "job_identity",
    "url_input",
]

#: The record layout; a journal written by a newer schema is refused.
SCHEMA_VERSION = 1


class JobState(enum.Enum):
    """Where a job of a journaled batch stands.

    ``pending`` and ``uploaded`` cost nothing yet; ``submitting`` is the intent, on disk before
    the creation request; ``submitted`` has its task id (paid); ``succeeded`` has its result
    (keys, sizes, expiry); ``downloaded`` is saved; ``failed`` cannot succeed by retrying;
    ``uncertain`` may have been paid without a recorded reply (re-sent only by choice);
    ``expired`` succeeded but its result expired before it was saved.
    """

    PENDING = "pending"
    UPLOADED = "uploaded"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    DOWNLOADED = "downloaded"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    EXPIRED = "expired"

    @property
    def paid(self) -> bool:
        """A task exists, or may exist, for a job in this state."""
        return self not in (JobState.PENDING, JobState.UPLOADED, JobState.FAILED)


_S = JobState

#: Every allowed change: ``TRANSITIONS[old]`` holds the states ``old`` may become.
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    _S.PENDING: frozenset({_S.UPLOADED, _S.SUBMITTING, _S.FAILED}),
    _S.UPLOADED: frozenset({_S.PENDING, _S.SUBMITTING, _S.FAILED}),
    _S.SUBMITTING: frozenset({_S.SUBMITTED, _S.PENDING, _S.FAILED, _S.UNCERTAIN}),
    _S.SUBMITTED: frozenset({_S.SUCCEEDED, _S.FAILED}),
    _S.SUCCEEDED: frozenset({_S.DOWNLOADED, _S.EXPIRED}),
    _S.UNCERTAIN: frozenset({_S.SUBMITTING}),
    _S.DOWNLOADED: frozenset(),
    _S.FAILED: frozenset(),
    _S.EXPIRED: frozenset(),
}


def is_durable(old: JobState, new: JobState) -> bool:
    """Whether this change must be on disk before the caller goes on (money depends on it)."""
    return JobState.SUBMITTING in (old, new) or new is JobState.SUBMITTED


# --- errors -----------------------------------------------------------------------------------


class JournalError(MioCreateError):
    """The journal cannot be used (unreadable, in use by another process, damaged)."""


class JournalMismatchError(JournalError):
    """The journal belongs to another host, account or a newer version of the library."""


class JournalStateError(JournalError):
    """A job's record is not in the state this change expects (another owner moved it)."""


class InputChangedError(InvalidInputError):
    """A job's input changed since the journal recorded it; the job is not resumed."""


# --- records ----------------------------------------------------------------------------------


@attrs.frozen
class ErrorInfo:
    """A typed error as the journal keeps it: no traceback, no secrets."""

    type: str
    message: str
    code: int | None = None

    @classmethod
    def of(cls, error: BaseException) -> ErrorInfo:
        message = getattr(error, "message", None) or str(error)
        return cls(type(error).__name__, message, getattr(error, "code", None))


@attrs.frozen(kw_only=True)
class JobRecord:
    """One job as the journal knows it."""

    id: str
    #: The job's position in the batch that first recorded it.
    index: int
    state: JobState
    #: Sizes and mtimes (or content hashes) of the inputs: a change refuses the job.
    fingerprint: str
    #: A short human description of the inputs (file names or keys), for status listings.
    label: str = ""
    #: "image" or "video", once known.
    kind: str | None = None
    task_id: int | None = None
    #: The task's result as the API describes it, without its signed URLs (keys and sizes).
    result: Mapping[str, Any] | None = None
    #: When the result expires (seconds since the epoch).
    expires_at: float | None = None
    error: ErrorInfo | None = None
    #: Where the result was saved (``downloaded``).
    path: str | None = None
    #: The saved file's size and sha256 (``downloaded``): a file at ``path`` is taken as the
    #: result only when both match, never a user's own file of that name.
    saved_size: int | None = None
    saved_sha256: str | None = None
    #: Seconds since the epoch of the last change.
    updated_at: float = 0.0
    #: Seconds since the epoch when the creation's reply came (None: no task, or recorded by
    #: an earlier version).
    created_at: float | None = None
    #: The owner's fencing epoch in a shared journal; always 0 in a local one.
    epoch: int = 0
    #: True in the answer of the ``register`` call that created the record.
    new: bool = attrs.field(default=False, eq=False)


@attrs.frozen
class NewJob:
    """What ``Journal.register`` records for a job it does not know yet."""

    id: str
    index: int
    fingerprint: str
    label: str = ""


@attrs.frozen(kw_only=True)
class JournalMeta:
    """Who a journal belongs to. Never the client id itself, a secret or a token."""

    base_url: str
    #: ``client_fingerprint(client_id)``; "" when the client has a bare token only.
    client: str
    library_version: str
    schema_version: int = SCHEMA_VERSION

    def check(self, current: JournalMeta, where: str) -> None:
        """Refuse to resume ``self`` (as stored) with the ``current`` client and library."""
        if self.schema_version > current.schema_version:
            raise JournalMismatchError(
                f"{where} was written by a newer miocreate-async (journal schema "
                f"{self.schema_version}, library {self.library_version}); upgrade to resume it"
            )
        if self.base_url.rstrip("/") != current.base_url.rstrip("/"):
            raise JournalMismatchError(
                f"{where} belongs to a batch run against {self.base_url}, not "
                f"{current.base_url}: its tasks live on that host (use another journal path)"
            )
        if self.client and current.client and self.client != current.client:
            raise JournalMismatchError(
                f"{where} belongs to a batch run with another client id (account): its tasks "
                "are not visible to this one (use another journal path)"
            )


def client_fingerprint(client_id: str | None) -> str:
    """A short one-way fingerprint of a client id: recognises the account, reveals nothing."""
    if not client_id:
        return ""
    return hashlib.sha256(b"miocreate-journal\0" + client_id.encode()).hexdigest()[:16]


@attrs.frozen
class Summary:
    """Jobs counted by state, and the four numbers a resume line gives."""

    counts: Mapping[JobState, int]
    #: Whether results are downloaded (the CLI): then ``succeeded`` is still in flight.
    downloads: bool = False
    #: Jobs the caller knows of that the journal has no record of yet.
    unrecorded: int = 0
    #: What was spent: tasks created by kind and day, how they ended, results to save
    #: (``results.summary().spend``; None where it was not read).
    spend: SpendReport | None = attrs.field(default=None, eq=False, kw_only=True)

    def __getitem__(self, state: JobState | str) -> int:
        return self.counts.get(JobState(state), 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + self.unrecorded

    @property
    def done(self) -> int:
        finished = [JobState.DOWNLOADED, JobState.FAILED, JobState.EXPIRED]
        if not self.downloads:
            finished.append(JobState.SUCCEEDED)
        return sum(self[state] for state in finished)

    @property
    def in_flight(self) -> int:
        return self[JobState.SUBMITTED] + (self[JobState.SUCCEEDED] if self.downloads else 0)

    @property
    def uncertain(self) -> int:
        return self[JobState.UNCERTAIN] + self[JobState.SUBMITTING]

    @property
    def to_do(self) -> int:
        return self[JobState.PENDING] + self[JobState.UPLOADED] + self.unrecorded

    def as_dict(self) -> dict[str, int]:
        states = {state.value: self[state] for state in JobState}
        return {
            "total": self.total,
            "done": self.done,
            "in_flight": self.in_flight,
            "uncertain": self.uncertain,
            "to_do": self.to_do,
            **states,
        }

    def __str__(self) -> str:
        return (
            f"{self.done} done, {self.in_flight} in flight, {self.uncertain} uncertain, "
            f"{self.to_do} to do"
        )


# --- job identity -----------------------------------------------------------------------------


@attrs.frozen
class InputRef:
    """One input of a job as the journal sees it.

    ``identity`` names the input (an absolute path, a content hash, a key); ``fingerprint``
    says whether it is still the same (size and mtime of a file, the hash of bytes).
    ``identity`` is None for inputs that have no stable name (file objects, streams).
    """

    identity: str | None
    fingerprint: str
    label: str


def describe_input(source: object, key: str | None) -> InputRef:
    """``source`` as the journal knows it; ``key`` is the uploaded key it stands for, if any.

    A missing file gets the fingerprint "missing": the upload reports it, with its own error.
    A path no file can have (a NUL character) is refused (``InvalidInputError``).
    """
    if key is not None:
        return InputRef(f"key:{key}", "", key)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return url_input(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        try:
            stat = os.stat(path)
        except ValueError:  # a NUL character: no file can have that name
            raise InvalidInputError(f"a path cannot hold a NUL character: {path!r}") from None
        except OSError:
            fingerprint = "missing"
        else:
            fingerprint = f"{stat.st_size}:{stat.st_mtime_ns}"
        return InputRef(f"path:{path}", fingerprint, os.path.basename(path))
    if isinstance(source, (bytes, bytearray, memoryview)):
        digest = hashlib.sha256(source).hexdigest()
        return InputRef(f"sha256:{digest}", digest, f"{len(source)} bytes")
    return InputRef(None, "", type(source).__name__)


def url_input(url: str) -> InputRef:
    """A URL input: named by the URL without its signing parameters (the same when it is
    signed again, wherever the batch runs), which is also its label: no secret is stored."""
    unsigned = unsigned_url(url)
    return InputRef(f"url:{unsigned}", "", unsigned)


def job_identity(
    image: InputRef, face: InputRef, *, hd: bool, kind: str | None, explicit_id: str | None
) -> tuple[str, str]:
    """The id of a job and the fingerprint of its inputs.

    Without ``explicit_id``, the id comes from the inputs' identities, ``hd`` and ``kind``, so
    the same jobs given again find their records. Raises ``InvalidInputError`` for a job that
    has neither an id nor inputs with a stable identity.
    """
    if explicit_id is None and (image.identity is None or face.identity is None):
        raise InvalidInputError(
            "a journaled job needs an id when its input is a file object or a stream: "
            "SwapJob(..., id='...')"
        )
    parts = [image.identity, face.identity, hd, kind]
    fingerprint = _digest([*parts, image.fingerprint, face.fingerprint])
    job_id = explicit_id if explicit_id is not None else "j" + _digest(parts)
    return job_id, fingerprint


def _digest(parts: Sequence[object]) -> str:
    encoded = json.dumps(list(parts), separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


# --- the interface ----------------------------------------------------------------------------


@runtime_checkable
class Journal(Protocol):
    """Durable state of one batch. Implementations: ``SQLiteJournal`` (a local file) and the
    shared Redis journal of ``miocreate_async.distributed``.

    Every method may be called from any task of the event loop; each is atomic.
    """

    async def open(self, meta: JournalMeta) -> Summary:
        """Create the journal or check that ``meta`` may resume it (``JournalMismatchError``).

        Records left ``submitting`` by an owner that is gone become ``uncertain``. Returns the
        counts as found (after that change).
        """
        ...

    async def close(self) -> None:
        """Commit what is pending and release the journal. Idempotent."""
        ...

    async def register(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        """Record the jobs not known yet as ``pending``; return every job's record, in order.

        Records created by this call have ``new`` set. Known jobs are returned as they are:
        the caller compares their fingerprints.
        """
        ...

    async def transition(
        self,
        job_id: str,
        expected: JobState | Collection[JobState],
        state: JobState,
        *,
        kind: str | None = None,
        task_id: int | None = None,
        result: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
        error: ErrorInfo | None = None,
        path: str | None = None,
        saved_size: int | None = None,
        saved_sha256: str | None = None,
    ) -> JobRecord:
        """Move a job from one of the ``expected`` states to ``state``, setting the fields given.

        Raises ``JournalStateError`` when the record is elsewhere (or the change is not in
        ``TRANSITIONS``). Returns once the change is committed, durably where ``is_durable``.
        """
        ...

    async def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None."""
        ...

    def records(
        self, states: Collection[JobState], *, limit: int | None = None
    ) -> AsyncIterator[JobRecord]:
        """Records in these states, soonest-expiring first, then by index; read in pages."""
        ...

    async def counts(self) -> Summary:
        """Jobs counted by state."""
        ...

    async def flush(self) -> None:
        """Commit every grouped change now."""
        ...
