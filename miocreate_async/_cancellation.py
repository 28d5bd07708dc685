"""Cancellation: what ends a call or a transfer while its request is out.

``InFlight`` knows what is in flight on a session; ``close()`` (the client's ``aclose()``)
ends it all at once with ClientClosedError, wherever it waits: an API call (``call()``: its
task is cancelled) or a transfer or a wait (``guard()``: an anyio cancel scope). ``Deadline``
ends a call whose reply is late with TimeoutError. A cancellation of the caller's own (a
timeout around the call) is never taken for one of these: it goes on as it is.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

import aiohttp
import anyio

from ._errors import ClientClosedError, MioCreateError

__all__ = ["CLOSED", "CallGuard", "Deadline", "Guard", "InFlight"]

#: What ClientClosedError says: before a call or a transfer starts, and when aclose() ends it.
CLOSED = "the client is closed; create a new MioCreate"
_CLOSED_MIDWAY = "the client was closed while this was in progress"

CheckLoop = Callable[[asyncio.AbstractEventLoop | None], None]


class InFlight:
    """The calls, transfers and waits in flight on one session, and whether it is closed."""

    __slots__ = ("_calls", "_scopes", "check_loop", "closed")

    def __init__(self, check_loop: CheckLoop) -> None:
        #: Refuses a task of another event loop than the session's (``Session.check_loop``).
        self.check_loop = check_loop
        self.closed = False
        #: The cancel scopes of transfers and waits in flight.
        self._scopes: set[anyio.CancelScope] = set()
        #: API calls in flight: ``close()`` cancels their tasks.
        self._calls: set[CallGuard] = set()

    def guard(self) -> Guard:
        """``with in_flight.guard():`` around a transfer or a wait."""
        return Guard(self)

    def call(self) -> CallGuard:
        """``with in_flight.call() as guard:`` around an API call."""
        return CallGuard(self)

    def close(self) -> None:
        self.closed = True
        for scope in list(self._scopes):
            scope.cancel()
        _cancel_calls(self._calls)


_scope_class: type[anyio.CancelScope] | None = None


def _new_scope() -> anyio.CancelScope:
    """``anyio.CancelScope()``, less the look-up of the running async library on each call
    (a guard is made per API call: aiohttp runs on asyncio only, so the class never changes)."""
    global _scope_class
    if _scope_class is None:
        scope = anyio.CancelScope()
        _scope_class = type(scope)
        return scope
    return _scope_class()


class Guard:
    """A cancel scope that ``InFlight.close`` cancels; it then raises ClientClosedError."""

    def __init__(self, in_flight: InFlight) -> None:
        self._in_flight = in_flight
        self._scope = _new_scope()

    def __enter__(self) -> None:
        if self._in_flight.closed:
            raise ClientClosedError(CLOSED)
        self._scope.__enter__()
        self._in_flight._scopes.add(self._scope)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._in_flight._scopes.discard(self._scope)
        if self._scope.__exit__(exc_type, exc, tb):
            # Only close() cancels this scope.
            raise ClientClosedError(_CLOSED_MIDWAY) from None
        _raise_if_closed(self._in_flight, exc)


def _raise_if_closed(in_flight: InFlight, exc: BaseException | None) -> None:
    """aiohttp's "Session is closed" and friends, once aclose() ran: say it plainly."""
    failed = isinstance(exc, (RuntimeError, aiohttp.ClientError, MioCreateError))
    if failed and in_flight.closed and not isinstance(exc, ClientClosedError):
        raise ClientClosedError(_CLOSED_MIDWAY) from exc


class _CancelsItsTask:
    """Cancels the task it was entered in, and tells that cancellation apart from any other.

    What aiohttp's timer and anyio's scopes do, at a fraction of the cost per call: the task is
    suspended at an await inside the ``with`` when ``cancel()`` runs (from another task or a
    timer), so the cancellation lands there. A cancellation of the caller's own (a timeout
    around the call) is never taken for ours: it leaves one more ``cancelling()`` than on
    entry (Python 3.11+), and goes on as it is.
    """

    __slots__ = ("_cancelling", "cancelled", "task")

    def _entered(self, task: asyncio.Task[Any] | None) -> None:
        self.cancelled = False
        self.task = task
        self._cancelling = 0
        if sys.version_info >= (3, 11) and task is not None:  # cancelling() is new in 3.11
            self._cancelling = task.cancelling()

    def cancel(self) -> None:
        if not self.cancelled and self.task is not None:
            self.cancelled = True
            self.task.cancel()

    def _replaces(self, exc_type: type[BaseException] | None) -> bool:
        """Whether the exception leaving the ``with`` is our cancellation's, to be replaced."""
        if not self.cancelled:
            return False
        task = self.task
        if sys.version_info >= (3, 11) and task is not None:
            task.uncancel()
            if task.cancelling() > self._cancelling:
                return False  # cancelled by its caller too: that cancellation goes on
        return exc_type is not None


class CallGuard(_CancelsItsTask):
    """What ``close()`` ends an API call with: ``ClientClosedError``, wherever it waits (an
    anyio scope, as ``Guard``, costs about 6 % of a call's CPU). A call has no shielded wait
    (no thread), so nothing needs a scope's shield."""

    __slots__ = ("_in_flight",)

    def __init__(self, in_flight: InFlight) -> None:
        self._in_flight = in_flight

    def __enter__(self) -> CallGuard:
        in_flight = self._in_flight
        if in_flight.closed:
            raise ClientClosedError(CLOSED)
        task = asyncio.current_task()
        in_flight.check_loop(None if task is None else task.get_loop())
        self._entered(task)
        in_flight._calls.add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        in_flight = self._in_flight
        in_flight._calls.discard(self)
        if self._replaces(exc_type):
            raise ClientClosedError(_CLOSED_MIDWAY) from None
        _raise_if_closed(in_flight, exc)


def _cancel_calls(calls: set[CallGuard]) -> None:
    """Cancel each task with a call in flight, once: one guard per task (even with calls
    nested in it: a token exchange) turns that into ClientClosedError."""
    current = asyncio.current_task()
    cancelled: set[asyncio.Task[Any] | None] = {None, current}  # current: its next request fails
    for guard in list(calls):
        if guard.task not in cancelled:
            cancelled.add(guard.task)
            guard.cancel()


class Deadline(_CancelsItsTask):
    """``with Deadline(seconds, task):`` raises TimeoutError in ``task`` (the current one,
    as its call's guard found it) once they have passed: one timer."""

    __slots__ = ("_handle", "_seconds")

    def __init__(self, seconds: float, task: asyncio.Task[Any] | None) -> None:
        self._seconds = seconds
        self._entered(task)

    def __enter__(self) -> None:
        loop = asyncio.get_running_loop() if self.task is None else self.task.get_loop()
        self._handle = loop.call_at(loop.time() + self._seconds, self.cancel)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._handle.cancel()
        if self._replaces(exc_type):
            raise TimeoutError from None
