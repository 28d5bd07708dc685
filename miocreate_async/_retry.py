"""The retry policy: which failures are transient, and how long to wait before trying again.

Exponential backoff, capped, with full jitter; ``Retry-After`` wins when the server sends one.
Requests that change nothing are retried on any transient failure. Requests that create a task
(and spend credits) are retried only when they provably created nothing: the connection was
never made, or the server refused them (802, 429).
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

import attrs

from ._errors import (
    ConnectError,
    HTTPStatusError,
    MioCreateError,
    MioCreateTimeoutError,
    RequestQuotaError,
    ServerError,
    StorageError,
    TransportError,
)

__all__ = ["RetryPolicy", "is_transient", "parse_retry_after", "refused_without_effect"]

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@attrs.frozen
class RetryPolicy:
    """How transient failures are retried. ``RetryPolicy(attempts=1)`` switches retries off."""

    #: Tries in all, the first included.
    attempts: int = 5
    #: The first backoff, in seconds; each further one is ``multiplier`` times longer...
    initial: float = 0.25
    multiplier: float = 2.0
    #: ...up to this cap.
    maximum: float = 8.0
    #: A longer ``Retry-After`` than this is not waited for: the error is raised instead.
    max_retry_after: float = 60.0
    #: Full jitter spreads a crowd of clients; turn it off for predictable waits.
    jitter: bool = True

    def allows(self, failures: int, retry_after: float | None = None) -> bool:
        """Whether another try is allowed after ``failures`` failures in a row; a longer
        ``Retry-After`` than ``max_retry_after`` is not waited for."""
        if failures >= self.attempts:
            return False
        return retry_after is None or retry_after <= self.max_retry_after

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.maximum, self.initial * self.multiplier ** (retry - 1))
        return random.uniform(0, ceiling) if self.jitter else ceiling


def is_transient(error: MioCreateError) -> bool:
    """Whether trying the same request again may succeed."""
    if isinstance(error, (TransportError, MioCreateTimeoutError, ServerError, RequestQuotaError)):
        return True
    if isinstance(error, (HTTPStatusError, StorageError)):
        return error.http_status in _TRANSIENT_STATUS
    return False


def refused_without_effect(error: MioCreateError) -> bool:
    """Whether a task-creating request provably created nothing, so re-sending is safe."""
    if isinstance(error, (ConnectError, RequestQuotaError)):
        return True
    return isinstance(error, HTTPStatusError) and error.http_status == 429


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # rare, and the email package is slow to load

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
