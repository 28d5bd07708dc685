"""Errors of the distributed edge (``TaskBudgetError`` now lives with the others, in
``miocreate_async._errors``: local batches have a budget too)."""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import ConfigurationError, MioCreateError, TaskBudgetError

__all__ = ["BatchLostError", "TaskBudgetError", "UnsafeRedisError"]


class UnsafeRedisError(ConfigurationError):
    """The Redis could lose a batch's records (a restart without them, an eviction): refused
    before anything is sent. ``settings`` names each unsafe setting (or says that ``CONFIG``
    could not be read). ``durability="unchecked"`` skips the check, at the user's risk."""

    def __init__(self, message: str, settings: Sequence[str] = ()) -> None:
        super().__init__(message)
        #: Each unsafe setting, as ``name value`` (``CONFIG`` when it could not be read).
        self.settings: tuple[str, ...] = tuple(settings)


class BatchLostError(MioCreateError):
    """The batch's records are gone from Redis (restarted without its data, evicted, flushed)
    or were replaced by another batch of the same name: nothing of it is re-created; its tasks
    are in the service (``miocreate task ID``) and its saved results on disk."""
