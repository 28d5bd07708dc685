"""Authentication: a static token, or a key pair exchanged for tokens refreshed before expiry.

Under any number of concurrent calls exactly one token request is in flight: callers wait on
one lock and re-check, so a crowd arriving at an expired token causes one exchange, not many.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

from ._models import Token, TokenRequest
from ._redact import REDACTED

__all__ = ["Auth", "ClientCredentialsAuth", "StaticTokenAuth"]


class Auth:
    """Gives the token for the next request; told when the server refused one."""

    #: Whether a refused token can be replaced by a new one.
    refreshable: bool = False

    async def token(self) -> str:
        raise NotImplementedError

    def invalidate(self, token: str) -> None:
        """The server answered 401 to ``token``."""


class StaticTokenAuth(Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

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
        self._last_error: BaseException | None = None

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
            if self._generation != generation and self._last_error is not None:
                # The exchange this caller waited for failed; don't stampede the endpoint.
                raise self._last_error
            self._generation += 1
            try:
                reply = await self._exchange(self._request)
            except Exception as exc:
                self._last_error = exc
                raise
            self._last_error = None
            # Refresh a margin before expiry, but never later than halfway through a short life.
            margin = min(self._refresh_margin, reply.expires_in / 2)
            self._token = reply.access_token
            self._refresh_at = self._clock() + reply.expires_in - margin
            return reply.access_token

    def invalidate(self, token: str) -> None:
        # Only the token that was refused: a newer one fetched meanwhile stays.
        if token == self._token:
            self._token = None

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(client_id={self.client_id!r}, client_secret={REDACTED!r})"
