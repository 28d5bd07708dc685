"""Pacing: when the session may send its next request (a rate limit, or one found from the
server's refusals for its quota)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import anyio

__all__ = ["AdaptiveRateLimiter", "Limiter", "RateLimiter"]

logger = logging.getLogger("miocreate_async")


class Limiter(Protocol):
    """Anything that paces requests: ``await acquire()`` returns when one may be sent (a
    shared limiter, for example, paces many processes together)."""

    async def acquire(self) -> None: ...


class RateLimiter:
    """At most ``rate`` requests a second, spaced evenly (a leaky bucket with no burst)."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self._interval
        if wait > 0:
            await anyio.sleep(wait)


class AdaptiveRateLimiter:
    """A request rate found from the server's refusals, for a quota nobody told the client.

    No limit until the first refusal for the quota (code 802); then about the rate the server
    accepted over the last second, spaced evenly; lower on each later refusal, higher for each
    second without one (additive increase, multiplicative decrease, as TCP's congestion
    control), so the client settles just under the quota with few refusals.
    """

    #: On a refusal the rate is multiplied by this...
    DECREASE = 0.8
    #: ...once per this many seconds: a quota counts requests over a window (a second, as a
    #: rule), so refusals go on for about that long after the rate dropped.
    HOLD = 1.0
    #: For each second without a refusal the rate grows by this share of itself.
    INCREASE = 0.05

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: Requests a second, or None: no refusal yet, no limit.
        self.rate: float | None = None
        self._clock = clock
        self._next = 0.0
        self._lock = anyio.Lock()
        # When the rate last dropped (refusals of requests sent before HOLD had passed since
        # were answered by that drop) and last grew.
        self._dropped = -math.inf
        self._grown = -math.inf
        # Accepted requests in the current and the previous one-second window.
        self._window = -math.inf
        self._count = 0
        self._previous = 0

    async def acquire(self) -> None:
        if self.rate is None:
            return
        async with self._lock:
            now = self._clock()
            wait = self._next - now
            self._next = max(now, self._next) + 1.0 / self.rate
        if wait > 0:
            await anyio.sleep(wait)

    def accepted(self) -> None:
        """A request got through: count it, and let the rate grow while no refusal comes."""
        now = self._clock()
        if now >= self._window + 1.0:
            self._previous = self._count if now < self._window + 2.0 else 0
            self._count, self._window = 0, now
        self._count += 1
        if self.rate is not None and now - self._grown >= 1.0:
            self.rate *= 1.0 + self.INCREASE
            self._grown = now

    def refused(self, sent_at: float) -> None:
        """The server refused a request sent at ``sent_at`` (this clock) for its quota."""
        if sent_at < self._dropped + self.HOLD:
            return  # the last drop answered it already
        # What the server took over about the last second is about its quota (or our share).
        seen = float(max(self._previous, self._count, 1))
        self.rate = seen if self.rate is None else min(seen, self.rate * self.DECREASE)
        self._dropped = self._grown = self._clock()
        logger.info("request quota reached: now at most %.1f requests a second", self.rate)
