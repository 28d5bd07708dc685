"""What a batch spent, from its journal: tasks created by kind and day, how they ended, and the
results to save before they expire (results live 7 days).

``spend_report(records)`` reads records as they are (``miocreate journal status``);
``SpendTally`` keeps the same report live while a batch runs (``results.summary().spend``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from ._interface import JobRecord, JobState
from ._report import SpendReport

__all__ = ["RESULT_LIFETIME", "SpendReport", "SpendTally", "spend_report"]

S = JobState
#: How long the service keeps a result (seconds).
RESULT_LIFETIME = 7 * 24 * 3600.0
#: Results expiring sooner than this are listed with the command that saves them.
EXPIRING_WITHIN = 24 * 3600.0
#: States in which a job's task exists (paid): created.
_CREATED = frozenset({S.SUBMITTED, S.SUCCEEDED, S.DOWNLOADED, S.EXPIRED})


def _day(record: JobRecord) -> str:
    # When the task was created; a journal of an earlier version has no such moment: the
    # result's expiry less its lifetime, else the record's last change.
    when = record.created_at
    if when is None:
        when = record.updated_at
        if record.expires_at is not None:
            when = record.expires_at - RESULT_LIFETIME
    return datetime.fromtimestamp(when, timezone.utc).date().isoformat()


def spend_report(
    records: Iterable[JobRecord], *, now: float | None = None, save_command: str | None = None
) -> SpendReport:
    """The spend report of these records (all of a journal's, for its whole story)."""
    now = time.time() if now is None else now
    created: dict[str, Counter[str]] = {}
    failed: Counter[str] = Counter()
    succeeded = uncertain = saved = 0
    expiring: list[tuple[float, int]] = []
    for record in records:
        state = record.state
        if state in _CREATED or (state is S.FAILED and record.task_id is not None):
            created.setdefault(_day(record), Counter())[record.kind or "unknown"] += 1
        if state in (S.SUCCEEDED, S.DOWNLOADED):
            succeeded += 1
        if state is S.DOWNLOADED:
            saved += 1
        if state in (S.UNCERTAIN, S.SUBMITTING):
            uncertain += 1
        if state is S.FAILED:
            error = record.error
            code = "unknown" if error is None else str(error.code or error.type)
            failed[code] += 1
        if (
            state is S.SUCCEEDED
            and record.task_id is not None
            and record.expires_at is not None
            and now < record.expires_at <= now + EXPIRING_WITHIN
        ):
            expiring.append((record.expires_at, record.task_id))
    extra = {} if save_command is None else {"save_command": save_command}
    return SpendReport(
        created={day: dict(kinds) for day, kinds in created.items()},
        succeeded=succeeded,
        failed=dict(failed),
        uncertain=uncertain,
        saved=saved,
        expiring=tuple(task for _, task in sorted(expiring)),
        **extra,
    )


class SpendTally:
    """A batch's spend report, kept live: each job's latest record, updated at each step."""

    def __init__(self) -> None:
        #: By job id; a job without one (no journal) by its entry object.
        self._records: dict[Hashable, JobRecord] = {}

    def load(self, records: Iterable[JobRecord]) -> None:
        for record in records:
            self._records[record.id] = record

    def moved(self, ident: Hashable, state: JobState, fields: Mapping[str, Any]) -> None:
        old = self._records.get(ident)
        if old is None:
            old = JobRecord(id="", index=0, state=state, fingerprint="")
        changes = {
            name: fields[name]
            for name in ("kind", "task_id", "expires_at", "error", "path")
            if fields.get(name) is not None
        }
        now = time.time()
        if state is JobState.SUBMITTED and old.created_at is None:
            changes["created_at"] = now
        self._records[ident] = attrs.evolve(old, state=state, updated_at=now, **changes)

    def report(self) -> SpendReport:
        return spend_report(self._records.values())
