"""The retry policy: which failures are transient, and how long to wait before trying again.

Exponential backoff, capped, with jitter; ``Retry-After`` is a lower bound on it, never a
shortcut (a crowd told "Retry-After: 0" would otherwise storm).
Requests that change nothing are retried on any transient failure. Requests that create a task
(and spend credits) are retried only when they provably created nothing: the connection was
never made, or the server refused them (802, 429).

Callers never write the retry loop (as with stamina's ``retry_context``)::

    async for attempt in policy.retrying(on=is_transient):
        with attempt:
            reply = await send()

The loop counts the failures, checks ``allows``, waits ``backoff`` (``Retry-After`` first) and
raises the last error when no try is left. Waiting is its only use of the event loop.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone
from types import TracebackType

import anyio
import attrs

from ._checks import at_least, finite
from ._correlation import log_extra
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

__all__ = [
    "RETRY_WARNING_INTERVAL",
    "Attempt",
    "ConnectionFailures",
    "RetryPolicy",
    "Retrying",
    "is_transient",
    "parse_retry_after",
    "refused_without_effect",
]

logger = logging.getLogger("miocreate_async")


class ConnectionFailures:
    """Connection failures in a row, with no reply between them. The session it is given
    reports to it (``in_a_row`` goes up on each failure, back to 0 on any reply); a batch's
    circuit breaker reads it: the service is down, not one request unlucky."""

    __slots__ = ("in_a_row",)

    def __init__(self) -> None:
        self.in_a_row: int = 0


#: Retries are logged at INFO; at most one of them per this many seconds also at WARNING, so
#: that a service in trouble shows where users look without flooding the log.
RETRY_WARNING_INTERVAL = 5.0
_last_warning = -RETRY_WARNING_INTERVAL

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@attrs.frozen
class RetryPolicy:
    """How transient failures are retried. ``RetryPolicy(attempts=1)`` switches retries off."""

    #: Tries in all, the first included.
    attempts: int = attrs.field(default=5, validator=at_least(1))
    #: The first backoff, in seconds; each further one is ``multiplier`` times longer...
    initial: float = attrs.field(default=0.25, validator=finite(at_least=0.0))
    multiplier: float = attrs.field(default=2.0, validator=finite(at_least=1.0))
    #: ...up to this cap.
    maximum: float = attrs.field(default=8.0, validator=finite(at_least=0.0))
    #: A longer ``Retry-After`` than this is not waited for: the error is raised instead.
    max_retry_after: float = attrs.field(default=60.0, validator=finite(at_least=0.0))
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
        ceiling = min(self.maximum, self.initial * self.multiplier ** min(retry - 1, 64))
        # Full jitter, but never a zero wait: a crowd told "Retry-After: 0" must not storm.
        delay = random.uniform(ceiling / 10, ceiling) if self.jitter else ceiling
        if retry_after is None:
            return delay
        # Retry-After is a lower bound on the normal backoff, not a replacement for it.
        return max(delay, min(retry_after, self.max_retry_after))

    def retrying(
        self,
        *,
        on: Callable[[MioCreateError], bool],
        until: float | None = None,
        what: str = "request",
        failed: MioCreateError | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Retrying:
        """The retry loop: ``async for attempt in policy.retrying(on=...): with attempt: ...``.

        A MioCreateError for which ``on`` is true is retried; any other exception goes through.
        With ``until`` (an ``anyio.current_time()`` deadline) retries go on, however many, while
        the wait before the next one ends before it; otherwise ``allows`` decides. ``failed``
        is a retryable error of a first try made before the loop: the loop starts with its
        backoff, as if that try had been its own. Once ``stop()`` is true (a batch's circuit
        breaker tripped: each retry would only delay the verdict) the last error is raised.
        """
        retrying = Retrying(self, on, until, what, stop)
        if failed is not None:
            retrying._failed(failed)
        return retrying


class Retrying:
    """The attempts of one retried operation; see ``RetryPolicy.retrying``."""

    def __init__(
        self,
        policy: RetryPolicy,
        on: Callable[[MioCreateError], bool],
        until: float | None,
        what: str,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self._policy = policy
        self._on = on
        self._until = until
        self._what = what
        self._stop = stop
        #: Failed tries so far.
        self.failures: int = 0
        self._error: MioCreateError | None = None
        self._succeeded = False

    def __aiter__(self) -> Retrying:
        return self

    async def __anext__(self) -> Attempt:
        if self._succeeded:
            raise StopAsyncIteration
        error, self._error = self._error, None
        if error is not None:
            self.failures += 1
            if self._stop is not None and self._stop():
                raise error
            delay = self._policy.backoff(self.failures, error.retry_after)
            if self._until is not None:
                if delay >= self._until - anyio.current_time():
                    raise error
            elif not self._policy.allows(self.failures, error.retry_after):
                raise error
            announce_retry(self._what, error, self.failures, delay)
            await anyio.sleep(delay)
        return Attempt(self)

    def _failed(self, error: MioCreateError) -> bool:
        if not self._on(error):
            return False
        self._error = error
        return True


class Attempt:
    """One try: a block that either succeeds (the loop ends) or fails (the loop decides)."""

    def __init__(self, retrying: Retrying) -> None:
        self._retrying = retrying

    @property
    def number(self) -> int:
        """1 for the first try."""
        return self._retrying.failures + 1

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            self._retrying._succeeded = True
            return False
        # A retryable failure is kept (and swallowed) for the loop to retry or raise.
        return isinstance(exc, MioCreateError) and self._retrying._failed(exc)


def is_transient(error: MioCreateError) -> bool:
    """Whether trying the same request again may succeed."""
    if isinstance(error, ConnectError) and error.permanent:
        return False
    if isinstance(error, (TransportError, MioCreateTimeoutError, ServerError, RequestQuotaError)):
        return True
    if isinstance(error, (HTTPStatusError, StorageError)):
        return error.http_status in _TRANSIENT_STATUS
    return False


def refused_without_effect(error: MioCreateError) -> bool:
    """Whether a task-creating request provably created nothing, so re-sending is safe."""
    if isinstance(error, ConnectError):
        return not error.permanent
    if isinstance(error, RequestQuotaError):
        return True
    return isinstance(error, HTTPStatusError) and error.http_status == 429


def announce_retry(what: str, error: MioCreateError, retry: int, delay: float) -> None:
    """Log a retry and its reason (messages hold no secrets: errors are redacted)."""
    global _last_warning
    now = time.monotonic()
    level = logging.INFO
    if now - _last_warning >= RETRY_WARNING_INTERVAL:
        _last_warning, level = now, logging.WARNING
    logger.log(
        level,
        "%s failed: %s; retrying (retry %d in %.1fs)",
        what,
        error,
        retry,
        delay,
        extra=log_extra(error),
    )


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
