"""Durable batch state: the journal's contract (``_interface``) and its local SQLite file.

Nothing here is imported by ``import miocreate_async``: a batch loads it when given a journal.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._interface import (
    SCHEMA_VERSION,
    TRANSITIONS,
    ErrorInfo,
    InputChangedError,
    InputRef,
    JobRecord,
    JobState,
    Journal,
    JournalError,
    JournalMeta,
    JournalMismatchError,
    JournalStateError,
    NewJob,
    Summary,
    client_fingerprint,
    describe_input,
    is_durable,
    job_identity,
)

if TYPE_CHECKING:
    from ._sqlite import SQLiteJournal

__all__ = [
    "SCHEMA_VERSION",
    "TRANSITIONS",
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
    "SQLiteJournal",
    "Summary",
    "as_journal",
    "client_fingerprint",
    "describe_input",
    "is_durable",
    "job_identity",
]


def as_journal(journal: str | os.PathLike[str] | Journal) -> Journal:
    """A ``Journal`` object as is; a path becomes a ``SQLiteJournal`` on that file."""
    if isinstance(journal, (str, os.PathLike)):
        from ._sqlite import SQLiteJournal

        return SQLiteJournal(journal)
    if not isinstance(journal, Journal):
        raise TypeError(f"journal must be a path or a Journal, not {type(journal).__name__}")
    return journal


def __getattr__(name: str) -> object:
    if name == "SQLiteJournal":
        from ._sqlite import SQLiteJournal

        return SQLiteJournal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
