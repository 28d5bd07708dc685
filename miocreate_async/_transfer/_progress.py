"""The progress meter of a transfer: ``callback(done, total)`` at a bounded rate.

Named ``ProgressMeter`` so that it is not confused with rich's ``Progress`` (the CLI's bars).
"""

from __future__ import annotations

import inspect

import anyio

from .._models import ProgressCallback

__all__ = ["ProgressMeter"]

#: At most this many progress calls per second (plus the first and the final one): a progress
#: bar redraws smoothly and a 500 MB transfer does not make thousands of calls.
MAX_RATE = 10.0


class ProgressMeter:
    """Calls ``callback(done, total)`` at a bounded rate; ``finish()`` always calls once more."""

    def __init__(
        self, callback: ProgressCallback | None, total: int | None, *, rate: float = MAX_RATE
    ) -> None:
        self._callback = callback
        self.total = total
        self.done = 0
        self._interval = 1.0 / rate
        self._last_call: float | None = None
        self._last_reported: int | None = None

    async def advance(self, count: int) -> None:
        await self.update(self.done + count)

    async def update(self, done: int) -> None:
        self.done = done
        if self._callback is None or done == self._last_reported:
            return
        now = anyio.current_time()
        if self._last_call is None or now - self._last_call >= self._interval:
            await self._call(now)

    async def restart(self) -> None:
        """A retry starts again from zero: the bar goes back rather than lie."""
        self.done = 0
        if self._callback is not None and self._last_reported not in (None, 0):
            await self._call(anyio.current_time())

    async def finish(self, done: int | None = None) -> None:
        """The final call, always made (unless it would repeat the last one)."""
        if done is not None:
            self.done = done
        if self._callback is not None and self._last_reported != self.done:
            await self._call(anyio.current_time())

    async def _call(self, now: float) -> None:
        assert self._callback is not None
        self._last_call = now
        self._last_reported = self.done
        # A coroutine callback is awaited, so async UIs (a bot editing a message) work too.
        result = self._callback(self.done, self.total)
        if inspect.isawaitable(result):
            await result
