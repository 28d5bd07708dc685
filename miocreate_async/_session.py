"""The session: one aiohttp session; an API request with auth, retries, timeouts, redaction.

It knows operations only by name and by whether they create a task; it knows no face swaps.
Its parts: pacing (``_pacing``), cancellation (``_cancellation``) and the reply's envelope
(``_envelope``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from ._auth import Auth
from ._cancellation import CLOSED, CallGuard, Deadline, Guard, InFlight
from ._config import Config
from ._envelope import decode
from ._errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectError,
    HTTPStatusError,
    MioCreateError,
    MioCreateTimeoutError,
    NotSentError,
    ProtocolError,
    RequestQuotaError,
    SubmissionUncertainError,
    TransportError,
)
from ._hints import connect_error
from ._operations import Operation
from ._pacing import AdaptiveRateLimiter, Limiter, RateLimiter
from ._proxy import proxy_for
from ._redact import redact_text
from ._retry import (
    ConnectionFailures,
    is_transient,
    parse_retry_after,
    refused_without_effect,
)
from ._telemetry import count, retried

__all__ = ["MAX_REPLY_BYTES", "Session"]

logger = logging.getLogger("miocreate_async")

#: API replies are small JSON documents: a larger one is refused, not held in memory.
MAX_REPLY_BYTES = 4 * 1024 * 1024
#: Fresh tokens tried in one call when each is refused (each expired in a queue, say) before
#: the refusal is believed: only a real credentials failure surfaces as AuthenticationError.
MAX_REFRESHES = 3


class Session:
    """Owns, or borrows, the client's one ``aiohttp.ClientSession`` and sends API requests."""

    def __init__(
        self,
        config: Config,
        auth: Auth | None,
        http: aiohttp.ClientSession | None = None,
        limiter: Limiter | None = None,
        failures: ConnectionFailures | None = None,
    ) -> None:
        self.config = config
        self.auth = auth
        self._http = http
        self._owns_http = http is None
        #: Finds the quota from refusals, when nothing else sets the pace.
        self._adaptive: AdaptiveRateLimiter | None = None
        #: The calls, transfers and waits in flight: ``aclose`` ends them.
        self._in_flight = InFlight(self.check_loop)
        if limiter is None and config.rate_limit:
            limiter = RateLimiter(config.rate_limit)
        elif limiter is None and config.adapt_rate:
            limiter = self._adaptive = AdaptiveRateLimiter()
        self._limiter = limiter
        self._token_headers: tuple[str | None, dict[str, str]] = (
            None,
            {"Accept": "application/json"},
        )
        # The reply's deadline is a Deadline's (aiohttp's total timeout costs 5 % of a call);
        # aiohttp keeps the connect timeout (a ConnectError, which a batch's breaker counts).
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout)
        #: The event loop the connections belong to, from the first request on.
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Where connection failures in a row are reported (a batch's circuit breaker reads it).
        self._failures = failures if failures is not None else ConnectionFailures()
        #: The proxy API requests go through (``HTTPS_PROXY``...), read once, as the client is made.
        self.proxy = proxy_for(config.base_url)
        #: Whether the API has replied once: a refused connection is then a restart, retried.
        self.reached = False

    @property
    def closed(self) -> bool:
        return self._in_flight.closed

    def check_loop(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Refuse, clearly, to be used from another event loop than the first one (the one
        the connections belong to, bound here on first use)."""
        if loop is None:  # each look-up is a getpid() system call on Python 3.11
            loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is None:
            self._loop = loop
            return
        raise RuntimeError(
            "this MioCreate was first used in another event loop"
            f"{' (now closed)' if self._loop.is_closed() else ''}; its connections belong "
            "there. Use one MioCreate per event loop: create it inside the coroutine you pass "
            "to asyncio.run() (e.g. `async with MioCreate() as mc:`), not at module level."
        )

    def http(self) -> aiohttp.ClientSession:
        """The aiohttp session, made on first use (inside the running event loop)."""
        if self._in_flight.closed:
            raise ClientClosedError(CLOSED)
        self.check_loop()
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.max_connections),
                # Per-request timeouts are set where requests are made: transfers differ.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout),
                headers={"User-Agent": self.config.user_agent},
                raise_for_status=False,
            )
        return self._http

    def _headers(self, token: str | None) -> dict[str, str]:
        """A request's headers, made once per token (aiohttp only reads them)."""
        if token != self._token_headers[0]:
            headers = {"Accept": "application/json"}
            if token is not None:
                headers["Authorization"] = f"{self.config.auth_scheme} {token}"
            self._token_headers = (token, headers)
        return self._token_headers[1]

    def guard(self) -> Guard:
        """``with session.guard():`` around a transfer or a wait: ``aclose()`` ends it at once
        with ClientClosedError, wherever it waits."""
        return self._in_flight.guard()

    def secrets(self) -> list[str]:
        return self.auth.secrets() if self.auth is not None else []

    async def aclose(self) -> None:
        if self._in_flight.closed:
            return
        self._in_flight.close()
        if self._http is not None and self._owns_http:
            await self._http.close()

    async def call(
        self,
        operation: Operation,
        body: Any = None,
        *,
        method: str = "POST",
        params: dict[str, str] | None = None,
        authenticated: bool = True,
        send_by: float | None = None,
        retry_until: float | None = None,
        stop_retries: Callable[[], bool] | None = None,
    ) -> tuple[Any, str | None]:
        """Send one API operation, with retries by the policy; return the envelope's ``data``
        and the request id of the reply it came in (``Config.request_id_headers``), or None.

        A task-creating operation is re-sent only when it provably created nothing; any other
        failure after it may have reached the server is a SubmissionUncertainError. Past
        ``send_by`` (``time.monotonic()``), checked just before each try goes out, nothing is
        sent: ``NotSentError``. ``retry_until`` (``anyio.current_time()``) bounds the retries of
        a task creation's refusals (a batch job's deadline); once ``stop_retries()`` is true (a
        batch's circuit breaker tripped) a failed try is not retried.
        """
        creates = operation.creates_task
        safe = refused_without_effect if creates else is_transient
        with self._in_flight.call() as guard:
            # The first try is sent without the retry loop, which only a failure needs.
            try:
                return await self._send(
                    guard, operation, method, body, params, authenticated, send_by
                )
            except MioCreateError as error:
                _raise_if_final(error, operation, safe)
                failed = error
            # A batch job's deadline bounds how long refusals of its creation are retried.
            until = retry_until if creates else None
            async for attempt in self.config.retry.retrying(
                on=safe, until=until, what=operation.value, failed=failed, stop=stop_retries
            ):
                with attempt:
                    retried(attempt.number)
                    try:
                        reply = await self._send(
                            guard, operation, method, body, params, authenticated, send_by
                        )
                    except MioCreateError as error:
                        _raise_if_final(error, operation, safe)
                        raise
        return reply

    async def _send(
        self,
        guard: CallGuard,
        operation: Operation,
        method: str,
        body: Any,
        params: dict[str, str] | None,
        authenticated: bool,
        send_by: float | None = None,
    ) -> tuple[Any, str | None]:
        """One request; sent again with a fresh token while the service refuses each one."""
        refreshes = 0
        while True:
            token = await self.auth.token() if authenticated and self.auth else None
            try:
                return await self._send_once(guard, operation, method, body, params, token, send_by)
            except AuthenticationError:
                if token is None or self.auth is None or not self.auth.refreshable:
                    raise
                if refreshes >= MAX_REFRESHES:
                    raise
                # The token expired early (or while the request queued for a connection).
                self.auth.invalidate(token)
                refreshes += 1

    async def _send_once(
        self,
        guard: CallGuard,
        operation: Operation,
        method: str,
        body: Any,
        params: dict[str, str] | None,
        token: str | None,
        send_by: float | None = None,
    ) -> tuple[Any, str | None]:
        # The guard checked the loop: the session's own checks are needed only to make it.
        http = self._http if self._http is not None and not self._in_flight.closed else self.http()
        if self._limiter is not None:
            await self._limiter.acquire()
        if send_by is not None and time.monotonic() > send_by:
            raise NotSentError(
                f"not sent: the moment it had to go by passed {time.monotonic() - send_by:.1f}s "
                "ago",
                operation=operation.value,
            )
        adaptive = self._adaptive
        sent_at = time.monotonic() if adaptive is not None else 0.0
        headers = self._headers(token)
        url = self.config.url(operation)
        name = operation.value
        try:
            with Deadline(self.config.timeout, guard.task):
                # Awaited, not entered: the context manager's two extra coroutines cost about
                # 5 % of a call; ``release()`` is all that its exit does for a read reply.
                response = await http.request(
                    method,
                    url,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=self._timeout,
                    proxy=self.proxy,
                )
                try:
                    raw = await _read_capped(response, name)
                finally:
                    response.release()
        except aiohttp.ConnectionTimeoutError as exc:
            self._failures.in_a_row += 1
            raise ConnectError(f"connecting timed out: {exc}", operation=name) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise MioCreateTimeoutError(
                f"no reply within {self.config.timeout:g}s", operation=name
            ) from exc
        except aiohttp.ClientError as exc:
            failed = connect_error(exc, url, proxy=self.proxy, reached=self.reached, operation=name)
            if failed is not None:
                self._failures.in_a_row += 1
                raise failed from exc
            raise TransportError(
                f"connection failed: {type(exc).__name__}: {redact_text(str(exc))}",
                operation=name,
            ) from exc
        self._failures.in_a_row = 0
        self.reached = True
        request_id = None
        for header in self.config.request_id_headers:
            request_id = response.headers.get(header)
            if request_id is not None:
                break
        status = response.status
        if logger.isEnabledFor(logging.DEBUG):  # one call instead of two, on every request
            extra = {"request_id": request_id}
            logger.debug("%s %s -> HTTP %d", method, url, status, extra=extra)
        try:
            data = decode(raw, status, response.reason or "", name, self.secrets, url)
        except MioCreateError as error:
            error.request_id = request_id
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if isinstance(error, RequestQuotaError):
                count("miocreate.refusals.802")
                if adaptive is not None:
                    adaptive.refused(sent_at)
            raise
        if adaptive is not None:
            adaptive.accepted()
        return data, request_id


async def _read_capped(response: aiohttp.ClientResponse, operation: str) -> bytes:
    """The reply's body, at most ``MAX_REPLY_BYTES``; a larger one is a ProtocolError."""
    length = response.content_length
    if length is not None and length <= MAX_REPLY_BYTES:
        # aiohttp reads no more than the Content-Length it was told.
        return await response.read()
    if (length or 0) > MAX_REPLY_BYTES:
        raise _too_big(response, operation)
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_REPLY_BYTES:
            raise _too_big(response, operation)
    return bytes(body)


def _too_big(response: aiohttp.ClientResponse, operation: str) -> ProtocolError:
    return ProtocolError(
        f"the reply is larger than {MAX_REPLY_BYTES} bytes: not an API reply",
        operation=operation,
        http_status=response.status,
    )


def _raise_if_final(
    error: MioCreateError, operation: Operation, safe: Callable[[MioCreateError], bool]
) -> None:
    """Raise what a failed try ends the call with: a task creation that may have reached the
    server is uncertain, never re-sent; any other error the retry rule does not cover as is."""
    if safe(error):
        return
    if operation.creates_task and _may_have_reached_server(error):
        raise SubmissionUncertainError.of(error, operation.value) from error
    raise error


def _may_have_reached_server(error: MioCreateError) -> bool:
    if isinstance(error, ConnectError):
        return False
    # A garbled reply (a cut JSON, an HTML page, no task_id) came after the request arrived.
    if isinstance(error, (TransportError, MioCreateTimeoutError, ProtocolError)):
        return True
    # A proxy's error page: the request may have been forwarded before it failed.
    return (
        isinstance(error, HTTPStatusError)
        and error.http_status is not None
        and (error.http_status >= 500)
    )
