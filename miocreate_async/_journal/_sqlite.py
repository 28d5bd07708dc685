"""The local journal: one SQLite file, driven from one worker thread.

The file is created readable by its owner only (0600) and kept with a rollback journal
(``journal_mode=TRUNCATE``) and ``synchronous=FULL``: a commit that returned is in the file
itself, on disk. A power cut cannot roll back an intent ("submitting") and let the next run pay
again, and the file alone (copied, moved or backed up without its neighbours) holds every
committed record; in WAL mode they would live in a ``-wal`` file until a checkpoint.

One thread owns the connection and runs calls in order; it groups the commits of free changes
(uploads, results) for up to ``group_delay`` seconds, and commits at once, together with whatever
is waiting, any change that ``is_durable``. An exclusive ``flock`` on the file keeps two batches
from running on one journal; ``journal status`` reads it without the lock.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ._interface import (
    TRANSITIONS,
    ErrorInfo,
    JobRecord,
    JobState,
    JournalError,
    JournalMeta,
    JournalStateError,
    NewJob,
    Summary,
    is_durable,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["SQLiteJournal"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    kind TEXT,
    task_id INTEGER,
    result TEXT,
    expires_at REAL,
    error TEXT,
    path TEXT,
    updated_at REAL NOT NULL,
    saved_size INTEGER,
    saved_sha256 TEXT,
    created_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, expires_at, idx);
"""
_COLUMNS = (
    "id, idx, state, fingerprint, label, kind, task_id, result, expires_at, error, path, "
    "updated_at, saved_size, saved_sha256, created_at"
)
#: Columns a journal written by an earlier version lacks: added when it is opened.
_ADDED = {"saved_size": "INTEGER", "saved_sha256": "TEXT", "created_at": "REAL"}
#: SQLite's journal mode: a rollback journal, so that every commit lands in the file itself
#: (benchmarks/journal.py measured it against WAL with a checkpoint after each commit).
JOURNAL_MODE = "TRUNCATE"
#: Rows per page of ``records`` and per query of ``register``.
_PAGE = 500


class SQLiteJournal:
    """A journal in a local SQLite file (see ``Journal`` for the contract)."""

    def __init__(self, path: str | os.PathLike[str], *, group_delay: float = 0.05) -> None:
        self.path: Path = Path(path)
        self._group_delay = group_delay
        self._worker: _Worker | None = None
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"SQLiteJournal({str(self.path)!r})"

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self, meta: JournalMeta) -> Summary:
        if self._worker is not None:
            raise RuntimeError("this journal is already open")
        self._lock_fd = _lock(self.path)
        try:
            self._worker = _Worker(lambda: _connect(self.path), self._group_delay)
            await self._worker.call(lambda db: _init(db, meta, self.path), write=True, durable=True)
        except BaseException:
            await self.close()
            raise
        return await self.counts()

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        try:
            if worker is not None:
                await worker.stop()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    async def __aenter__(self) -> SQLiteJournal:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- reading and writing ------------------------------------------------------------------

    def _running(self) -> _Worker:
        if self._worker is None:
            raise RuntimeError("the journal is not open: call `await journal.open(meta)` first")
        return self._worker

    async def register(self, jobs: Sequence[NewJob]) -> list[JobRecord]:
        records: list[JobRecord] = []
        for start in range(0, len(jobs), _PAGE):
            page = jobs[start : start + _PAGE]
            register = functools.partial(_register, jobs=page)
            records += await self._running().call(register, write=True)
        return records

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
        allowed = frozenset({expected} if isinstance(expected, JobState) else expected)
        changes: dict[str, Any] = {"state": state.value}
        for name, value in (
            ("kind", kind),
            ("task_id", task_id),
            ("result", None if result is None else json.dumps(result, separators=(",", ":"))),
            ("expires_at", expires_at),
            ("error", None if error is None else json.dumps(attrs.asdict(error))),
            ("path", path),
            ("saved_size", saved_size),
            ("saved_sha256", saved_sha256),
        ):
            if value is not None:
                changes[name] = value
        durable = any(is_durable(old, state) for old in allowed)
        return await self._running().call(
            lambda db: _transition(db, job_id, allowed, state, changes),
            write=True,
            durable=durable,
        )

    async def get(self, job_id: str) -> JobRecord | None:
        return await self._running().call(lambda db: _get(db, job_id))

    async def records(
        self, states: Collection[JobState], *, limit: int | None = None
    ) -> AsyncIterator[JobRecord]:
        values = [state.value for state in states]
        after: tuple[float, int, str] | None = None
        left = limit
        while left is None or left > 0:
            size = _PAGE if left is None else min(_PAGE, left)
            page = await self._running().call(
                functools.partial(_page, states=values, after=after, size=size)
            )
            for record in page:
                yield record
            if len(page) < size:
                return
            last = page[-1]
            after = (_expiry_key(last.expires_at), last.index, last.id)
            if left is not None:
                left -= len(page)

    async def counts(self) -> Summary:
        return await self._running().call(_counts)

    async def flush(self) -> None:
        await self._running().call(lambda db: None, write=True, durable=True)

    # --- without the lock ---------------------------------------------------------------------

    @classmethod
    async def read(cls, path: str | os.PathLike[str]) -> tuple[JournalMeta | None, list[JobRecord]]:
        """Every record of a journal, even one in use, by index; without their results (the
        records say where each result expires and where it was saved).

        A file that holds nothing yet (its batch was killed before the first commit) gives no
        meta and no records: opening it makes it a journal."""
        worker = _Worker(lambda: _connect(Path(path), readonly=True), 0.0)
        try:
            if await worker.call(_is_blank):
                return None, []
            meta = await worker.call(_read_meta)
            records = await worker.call(_all_without_results)
        finally:
            await worker.stop()
        return meta, records

    @classmethod
    async def inspect(
        cls, path: str | os.PathLike[str], *, listed: int = 20
    ) -> tuple[JournalMeta, Summary, list[JobRecord], list[JobRecord]]:
        """Read a journal, even one in use: its meta, counts, uncertain and expiring jobs.

        ``submitting`` jobs are listed with the uncertain ones: if their batch is gone, they are.
        """
        worker = _Worker(lambda: _connect(Path(path), readonly=True), 0.0)
        try:
            meta = await worker.call(_read_meta)
            summary = await worker.call(_counts)
            uncertain = await worker.call(
                lambda db: _page(db, ["uncertain", "submitting"], None, listed)
            )
            expiring = await worker.call(lambda db: _page(db, ["succeeded"], None, listed))
        finally:
            await worker.stop()
        return meta, summary, uncertain, expiring

    @classmethod
    async def read_records(cls, path: str | os.PathLike[str]) -> list[JobRecord]:
        """Every record of a journal, read-only, even one in use (a dry run, a spend report)."""
        worker = _Worker(lambda: _connect(Path(path), readonly=True), 0.0)
        try:
            rows = await worker.call(
                lambda db: db.execute(f"SELECT {_COLUMNS} FROM jobs").fetchall()
            )
        finally:
            await worker.stop()
        return [_record(row) for row in rows]


# --- the worker thread ----------------------------------------------------------------------


@attrs.define
class _Call:
    function: Callable[[sqlite3.Connection], Any]
    write: bool
    durable: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class _Worker:
    """One thread that owns the connection: calls run in order, commits are grouped."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], group_delay: float) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._group_delay = group_delay
        self._thread = threading.Thread(
            target=self._run, args=(connect,), name="miocreate-journal", daemon=True
        )
        self._thread.start()

    async def call(
        self,
        function: Callable[[sqlite3.Connection], T],
        *,
        write: bool = False,
        durable: bool = False,
    ) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put(_Call(function, write, durable, loop, future))
        # Shielded: a cancelled caller does not undo a change the thread may have committed.
        return await asyncio.shield(future)

    async def stop(self) -> None:
        self._calls.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    def _run(self, connect: Callable[[], sqlite3.Connection]) -> None:
        try:
            db = connect()
        except BaseException as exc:
            # Every call answers with the reason, until stopped.
            while (call := self._calls.get()) is not None:
                call.loop.call_soon_threadsafe(_settle, call.future, False, exc)
            return
        dirty_since: float | None = None
        try:
            while True:
                timeout = None
                if dirty_since is not None:
                    timeout = max(0.0, dirty_since + self._group_delay - time.monotonic())
                try:
                    first = self._calls.get(timeout=timeout)
                except queue.Empty:
                    _commit(db)
                    dirty_since = None
                    continue
                group = [first]
                while not self._calls.empty() and group[-1] is not None:
                    group.append(self._calls.get_nowait())
                stopping = group[-1] is None
                calls = [call for call in group if call is not None]
                done: list[tuple[_Call, bool, Any]] = []
                must_commit = stopping
                for call in calls:
                    if call.write and not db.in_transaction:
                        db.execute("BEGIN IMMEDIATE")
                    try:
                        done.append((call, True, call.function(db)))
                    except BaseException as exc:
                        done.append((call, False, _journal_error(exc)))
                        continue
                    if call.write:
                        dirty_since = dirty_since or time.monotonic()
                        must_commit = must_commit or call.durable
                if must_commit and db.in_transaction:
                    try:
                        _commit(db)
                    except sqlite3.Error as exc:
                        failure = JournalError(f"the journal could not be written: {exc}")
                        done = [(call, False, failure) for call, _, _ in done]
                    dirty_since = None
                for call, ok, value in done:
                    call.loop.call_soon_threadsafe(_settle, call.future, ok, value)
                if stopping:
                    return
        finally:
            try:
                _commit(db)
            finally:
                db.close()


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _commit(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.execute("COMMIT")


def _journal_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        return JournalError(f"the journal could not be used: {exc}")
    return exc


# --- opening ----------------------------------------------------------------------------------


def _lock(path: Path) -> int:
    """Create the file (0600) if needed and hold an exclusive lock on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise JournalError(f"cannot open the journal {path}: {exc.strerror}") from None
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(
                f"the journal {path} is in use by another batch (wait for it, or stop it)"
            ) from None
    return fd


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly and not path.is_file():
        raise JournalError(f"no journal at {path}")
    try:
        if readonly:
            db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
            )
        else:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot open the journal {path}: {exc}") from None
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        if not readonly:
            db.execute(f"PRAGMA journal_mode = {JOURNAL_MODE}")
            db.execute("PRAGMA synchronous = FULL")
        elif _needs_recovery(db):
            # A batch killed mid-transaction left a hot rollback journal, which a read-only
            # connection cannot roll back: a writable one does it (SQLite's locks keep a live
            # batch safe), then only reads.
            db.close()
            db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None
            )
            db.execute("PRAGMA busy_timeout = 5000")
    except sqlite3.Error as exc:
        db.close()  # not a database: leave no open connection for the GC to report
        raise JournalError(f"cannot open the journal {path}: {exc}") from None
    return db


def _needs_recovery(db: sqlite3.Connection) -> bool:
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc):
            return True
        raise
    return False


def _init(db: sqlite3.Connection, meta: JournalMeta, path: Path) -> None:
    try:
        db.executescript("BEGIN IMMEDIATE;" + _SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path} is not a journal: {exc}") from None
    present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    for column, kind in _ADDED.items():
        if column not in present:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
    stored = dict(db.execute("SELECT name, value FROM meta").fetchall())
    if stored:
        _meta_of(stored).check(meta, f"the journal {path}")
    else:
        rows = attrs.asdict(meta)
        db.executemany(
            "INSERT INTO meta (name, value) VALUES (?, ?)",
            [(name, str(value)) for name, value in rows.items()],
        )
    # The owner of these intents is gone (we hold the lock): nobody knows if they were paid.
    db.execute(
        "UPDATE jobs SET state = 'uncertain', updated_at = ? WHERE state = 'submitting'",
        (time.time(),),
    )


def _meta_of(stored: Mapping[str, str]) -> JournalMeta:
    return JournalMeta(
        base_url=stored.get("base_url", ""),
        client=stored.get("client", ""),
        library_version=stored.get("library_version", "?"),
        schema_version=int(stored.get("schema_version", "0")),
    )


def _is_blank(db: sqlite3.Connection) -> bool:
    """A database without a single table: created, never committed to."""
    try:
        tables: int = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"not a journal: {exc}") from None
    return tables == 0


def _read_meta(db: sqlite3.Connection) -> JournalMeta:
    try:
        return _meta_of(dict(db.execute("SELECT name, value FROM meta").fetchall()))
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"not a journal: {exc}") from None


# --- queries ----------------------------------------------------------------------------------


def _record(row: Sequence[Any]) -> JobRecord:
    job_id, idx, state, fingerprint, label, kind, task_id, result, expires, error, path, at = row[
        :12
    ]
    size, sha256, created = row[12:]
    return JobRecord(
        id=job_id,
        index=idx,
        state=JobState(state),
        fingerprint=fingerprint,
        label=label,
        kind=kind,
        task_id=task_id,
        result=json.loads(result) if result else None,
        expires_at=expires,
        error=ErrorInfo(**json.loads(error)) if error else None,
        path=path,
        updated_at=at,
        saved_size=size,
        saved_sha256=sha256,
        created_at=created,
    )


def _get(db: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else _record(row)


def _register(db: sqlite3.Connection, jobs: Sequence[NewJob]) -> list[JobRecord]:
    marks = ",".join("?" * len(jobs))
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE id IN ({marks})", [job.id for job in jobs]
    ).fetchall()
    found = {row[0]: _record(row) for row in rows}
    now = time.time()
    for job in jobs:
        if job.id in found:
            continue
        db.execute(
            "INSERT INTO jobs (id, idx, state, fingerprint, label, updated_at) "
            "VALUES (?, ?, 'pending', ?, ?, ?)",
            (job.id, job.index, job.fingerprint, job.label, now),
        )
        found[job.id] = JobRecord(
            id=job.id,
            index=job.index,
            state=JobState.PENDING,
            fingerprint=job.fingerprint,
            label=job.label,
            updated_at=now,
            new=True,
        )
    return [found[job.id] for job in jobs]


def _transition(
    db: sqlite3.Connection,
    job_id: str,
    expected: frozenset[JobState],
    state: JobState,
    changes: Mapping[str, Any],
) -> JobRecord:
    row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise JournalStateError(f"no job {job_id!r} in the journal")
    old = JobState(row[0])
    if old not in expected or state not in TRANSITIONS[old]:
        raise JournalStateError(f"job {job_id!r} is {old.value}, it cannot become {state.value}")
    columns = dict(changes)
    now = time.time()
    if state is JobState.SUBMITTED and old is not JobState.SUBMITTED:
        # The creation's reply: when the task was paid for (the spend report's day).
        columns["created_at"] = now
    assignments = ", ".join(f"{name} = ?" for name in columns)
    db.execute(
        f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ?",
        [*columns.values(), now, job_id],
    )
    record = _get(db, job_id)
    assert record is not None
    return record


def _expiry_key(expires_at: float | None) -> float:
    return 1e300 if expires_at is None else expires_at


def _page(
    db: sqlite3.Connection,
    states: Sequence[str],
    after: tuple[float, int, str] | None,
    size: int,
) -> list[JobRecord]:
    marks = ",".join("?" * len(states))
    order = "coalesce(expires_at, 1e300), idx, id"
    where = f"state IN ({marks})"
    params: list[Any] = list(states)
    if after is not None:
        where += f" AND ({order}) > (?, ?, ?)"
        params += after
    rows = db.execute(
        f"SELECT {_readable(db)} FROM jobs WHERE {where} ORDER BY {order} LIMIT ?",
        [*params, size],
    ).fetchall()
    return [_record(row) for row in rows]


def _all_without_results(db: sqlite3.Connection) -> list[JobRecord]:
    columns = _readable(db).replace("result,", "NULL,")
    return [_record(row) for row in db.execute(f"SELECT {columns} FROM jobs ORDER BY idx")]


def _readable(db: sqlite3.Connection) -> str:
    """``_COLUMNS``, with NULL for those a journal of an earlier version (read, not opened)
    lacks."""
    present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    return ", ".join(
        name if name in present or name not in _ADDED else "NULL" for name in _COLUMNS.split(", ")
    )


def _counts(db: sqlite3.Connection) -> Summary:
    rows = db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall()
    return Summary({JobState(state): count for state, count in rows})
