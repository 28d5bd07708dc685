"""Errors of the distributed edge (``TaskBudgetError`` now lives with the others, in
``miocreate_async._errors``: local batches have a budget too)."""

from __future__ import annotations

from .._errors import TaskBudgetError

__all__ = ["TaskBudgetError"]
