"""Authentication: a static token, or a key pair exchanged for tokens refreshed before expiry.

Under any number of concurrent calls exactly one token request is in flight: callers wait on
one lock and re-check, so a crowd arriving at an expired token causes one exchange, not many.
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ._errors import MioCreateError
from ._redact import REDACTED
from ._retry import is_transient as transient

if TYPE_CHECKING:
    from ._wire import Token, TokenRequest

__all__ = ["Auth", "ClientCredentialsAuth", "StaticTokenAuth"]


class Auth:
    """Gives the token for the next request; told when the server refused one."""

    #: Whether a refused token can be replaced by a new one.
    refreshable: bool = False

    async def token(self) -> str:
        raise NotImplementedError

    def invalidate(self, token: str) -> None:
        """The server answered 401 to ``token``."""

    def secrets(self) -> list[str]:
        """What must never appear in an error or a log line: the secret, the tokens."""
        return []


class StaticTokenAuth(Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    def secrets(self) -> list[str]:
        return [self._token]

    def __repr__(self) -> str:
        return f"StaticTokenAuth(token={REDACTED!r})"


class ClientCredentialsAuth(Auth):
    """Exchanges ``client_id``/``client_secret`` for tokens, single-flight."""

    refreshable = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        exchange: Callable[[TokenRequest], Awaitable[Token]],
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from ._wire import TokenRequest  # the wire bodies load with the first client

        self.client_id = client_id
        self._request = TokenRequest(client_id=client_id, client_secret=client_secret)
        self._exchange = exchange
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = anyio.Lock()
        # Bumped by every exchange, so waiters can tell a failed exchange they queued behind.
        self._generation = 0
        self._last_error: MioCreateError | None = None
        #: Every token issued so far, scrubbed from any server text (servers echo requests).
        self._issued: deque[str] = deque(maxlen=64)

    def _current(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    async def token(self) -> str:
        token = self._current()
        if token is not None:
            return token
        generation = self._generation
        async with self._lock:
            token = self._current()
            if token is not None:
                return token
            failed = self._last_error
            if self._generation != generation and failed is not None and not transient(failed):
                # The exchange this caller waited for was refused: don't stampede the
                # endpoint. Each caller gets its own error (a batch writes task ids into them).
                raise copy.copy(failed) from failed.__cause__
            # Never queued behind an exchange, or that one failed for a passing reason: try.
            self._generation += 1
            try:
                reply = await self._exchange(self._request)
            except MioCreateError as exc:
                self._last_error = exc
                raise
            self._last_error = None
            self._token = reply.access_token
            self._issued.append(reply.access_token)
            self._refresh_at = self._clock() + _lifetime(reply.expires_in, self._refresh_margin)
            return reply.access_token

    def secrets(self) -> list[str]:
        return [self._request.client_secret, *self._issued]

    def invalidate(self, token: str) -> None:
        # Only the token that was refused: a newer one fetched meanwhile stays.
        if token == self._token:
            self._token = None

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(client_id={self.client_id!r}, client_secret={REDACTED!r})"


#: A token whose life the server gives as 0 or less, NaN or absurd is used until it is refused
#: (401), not exchanged again before every call; a short one is refreshed at most this often.
MIN_LIFETIME = 1.0


def _lifetime(expires_in: float, margin: float) -> float:
    """Seconds to use a token for: a margin before expiry, at most half of a short life."""
    if not math.isfinite(expires_in) or expires_in <= 0:
        return math.inf
    return max(MIN_LIFETIME, expires_in - min(margin, expires_in / 2))
