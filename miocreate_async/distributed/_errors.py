"""Errors of the distributed edge."""

from __future__ import annotations

from .._errors import MioCreateError

__all__ = ["TaskBudgetError"]


class TaskBudgetError(MioCreateError):
    """The batch's ``max_tasks`` budget was used up: this job was not submitted."""
