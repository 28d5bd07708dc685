"""Correlation: which task, batch job and service request an error or a log record belongs to.

Every record of the ``miocreate_async`` loggers has the attributes ``task_id``, ``job_id`` and
``request_id`` (None where unknown), so a formatter can show them (``%(request_id)s``) and a
JSON log handler ships them: ``request_id`` is what the service's gateway put on its reply
(``x-request-id``, ``cf-ray``: ``Config.request_id_headers``), the id its support asks for.
Errors carry the same three as attributes.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Protocol

__all__ = ["FIELDS", "current_job", "log_extra"]

#: The attributes every record of the library's loggers has.
FIELDS = ("task_id", "job_id", "request_id")

#: The batch job being run in this context (its journal id).
current_job: ContextVar[str | None] = ContextVar("miocreate_job", default=None)


class _Correlated(Protocol):
    task_id: int | None
    job_id: str | None
    request_id: str | None


def log_extra(
    error: _Correlated | None = None,
    *,
    task_id: int | None = None,
    request_id: str | None = None,
) -> dict[str, object]:
    """``extra=`` for a record about ``error`` (its ids), or about ``task_id`` and the reply
    of ``request_id``."""
    if error is not None:
        return {
            "task_id": error.task_id,
            "job_id": error.job_id or current_job.get(),
            "request_id": error.request_id,
        }
    return {"task_id": task_id, "job_id": current_job.get(), "request_id": request_id}


class _Fill(logging.Filter):
    """Gives a record the correlation attributes it was not logged with, from the context."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        if "job_id" not in fields:
            fields["job_id"] = current_job.get()
        fields.setdefault("task_id", None)
        fields.setdefault("request_id", None)  # a record about a reply is given its id
        return True


_FILL = _Fill()
for _name in ("miocreate_async", "miocreate_async.distributed"):
    logging.getLogger(_name).addFilter(_FILL)
