"""The session layer: one aiohttp session, the envelope, auth, retries, timeouts, redaction.

It knows operations only by name and by whether they create a task; it knows no face swaps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import anyio

from ._auth import Auth
from ._config import Config
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
    error_for_code,
)
from ._hints import BASE_URL_HINT, connect_error
from ._operations import Operation
from ._proxy import proxy_for
from ._redact import redact_text, redact_url
from ._retry import (
    ConnectionFailures,
    is_transient,
    parse_retry_after,
    refused_without_effect,
)
from ._telemetry import count, retried

__all__ = [
    "MAX_REPLY_BYTES",
    "AdaptiveRateLimiter",
    "Limiter",
    "RateLimiter",
    "Session",
]

logger = logging.getLogger("miocreate_async")

#: API replies are small JSON documents: a larger one is refused, not held in memory.
MAX_REPLY_BYTES = 4 * 1024 * 1024
#: Fresh tokens tried in one call when each is refused (each expired in a queue, say) before
#: the refusal is believed: only a real credentials failure surfaces as AuthenticationError.
MAX_REFRESHES = 3
#: What ClientClosedError says: before a call or a transfer starts, and when aclose() ends it.
_CLOSED = "the client is closed; create a new MioCreate"
_CLOSED_MIDWAY = "the client was closed while this was in progress"


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
        self._closed = False
        #: Finds the quota from refusals, when nothing else sets the pace.
        self._adaptive: AdaptiveRateLimiter | None = None
        #: The cancel scopes of transfers and waits in flight: ``aclose`` ends them.
        self._in_flight: set[anyio.CancelScope] = set()
        #: API calls in flight (``_CallGuard``): ``aclose`` cancels their tasks.
        self._calls: set[_CallGuard] = set()
        if limiter is None and config.rate_limit:
            limiter = RateLimiter(config.rate_limit)
        elif limiter is None and config.adapt_rate:
            limiter = self._adaptive = AdaptiveRateLimiter()
        self._limiter = limiter
        self._token_headers: tuple[str | None, dict[str, str]] = (
            None,
            {"Accept": "application/json"},
        )
        # The reply's deadline is a _Deadline's (aiohttp's total timeout costs 5 % of a call);
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
        return self._closed

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
        if self._closed:
            raise ClientClosedError(_CLOSED)
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

    def guard(self) -> _Guard:
        """``with session.guard():`` around a call or a transfer: ``aclose()`` ends it at once
        with ClientClosedError, wherever it waits."""
        return _Guard(self)

    def secrets(self) -> list[str]:
        return self.auth.secrets() if self.auth is not None else []

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for scope in list(self._in_flight):
            scope.cancel()
        _cancel_calls(self._calls)
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
        with _CallGuard(self) as guard:
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
        guard: _CallGuard,
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
        guard: _CallGuard,
        operation: Operation,
        method: str,
        body: Any,
        params: dict[str, str] | None,
        token: str | None,
        send_by: float | None = None,
    ) -> tuple[Any, str | None]:
        # The guard checked the loop: the session's own checks are needed only to make it.
        http = self._http if self._http is not None and not self._closed else self.http()
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
            with _Deadline(self.config.timeout, guard.task):
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
            data = _decode(raw, status, response.reason or "", name, self.secrets, url)
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


def _decode(
    raw: bytes,
    status: int,
    reason: str,
    operation: str,
    secrets: Callable[[], list[str]] | None = None,
    url: str = "",
) -> Any:
    """The envelope's ``data``; the typed error when the code (then the HTTP status) says so.

    Server text goes into errors scrubbed of ``secrets()`` and signatures: servers echo
    requests. (Asked for only when an error is made: a success shows no server text.)
    """
    envelope = _json(raw)
    code = envelope.get("code") if envelope.__class__ is dict else None
    if code == 200 and code.__class__ is int:  # nearly every reply: no more checks
        return envelope.get("data")
    if operation == _TOKEN and isinstance(envelope, dict) and "code" not in envelope:
        # A bare OAuth reply (the token path is unconfirmed): usable if it holds a token.
        if status < 400 and "access_token" in envelope:
            return envelope
        raise (ProtocolError if status < 400 else HTTPStatusError)(
            f"the token endpoint answered HTTP {status} without an API envelope or a token "
            "(its reply is not shown: it may hold credentials)",
            operation=operation,
            http_status=status,
        )
    if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), (int, str)):
        snippet = redact_text(raw[:80].decode("utf-8", "replace").strip(), _known(secrets))
        if status >= 500:  # a proxy's or gateway's page: the service may be back soon
            raise HTTPStatusError(
                f"HTTP {status} {reason} without an API reply from {redact_url(url)}",
                operation=operation,
                http_status=status,
            )
        # Any other reply without the envelope: the URL is not the API's.
        raise (HTTPStatusError if status >= 400 else ProtocolError)(
            f"{redact_url(url)} answered HTTP {status} {reason} with {snippet!r}, not an API "
            f"envelope: it is not a MioCreate API; {BASE_URL_HINT} and Config.paths",
            operation=operation,
            http_status=status,
        )
    from ._converter import strict_int  # loaded with the first client already

    try:
        code = strict_int(envelope["code"])  # a JSON true is no code 1
    except (TypeError, ValueError):
        raise ProtocolError(
            f"bad envelope code {redact_text(str(envelope['code'])[:40], _known(secrets))!r}",
            operation=operation,
        ) from None
    if code != 200:
        message = redact_text(str(envelope.get("message") or "")[:2000], _known(secrets))
        raise error_for_code(code, message, operation=operation, http_status=status)
    return envelope.get("data")


_TOKEN = Operation.TOKEN.value


def _json(raw: bytes) -> Any:
    """The reply's JSON, or None. Decoded as UTF-8 first (what JSON replies are: the encoding
    is not sniffed), then as ``json.loads`` reads bytes (a BOM, UTF-16)."""
    try:
        return json.loads(raw.decode())
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        pass
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _known(secrets: Callable[[], list[str]] | None) -> list[str]:
    return secrets() if secrets is not None else []


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


class _Guard:
    """A cancel scope that ``Session.aclose`` cancels; it then raises ClientClosedError."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._scope = _new_scope()

    def __enter__(self) -> None:
        if self._session.closed:
            raise ClientClosedError(_CLOSED)
        self._scope.__enter__()
        self._session._in_flight.add(self._scope)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._session._in_flight.discard(self._scope)
        if self._scope.__exit__(exc_type, exc, tb):
            # Only aclose() cancels this scope.
            raise ClientClosedError(_CLOSED_MIDWAY) from None
        _raise_if_closed(self._session, exc)


def _raise_if_closed(session: Session, exc: BaseException | None) -> None:
    """aiohttp's "Session is closed" and friends, once aclose() ran: say it plainly."""
    failed = isinstance(exc, (RuntimeError, aiohttp.ClientError, MioCreateError))
    if failed and session.closed and not isinstance(exc, ClientClosedError):
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


class _CallGuard(_CancelsItsTask):
    """What ``aclose()`` ends an API call with: ``ClientClosedError``, wherever it waits (an
    anyio scope, as ``_Guard``, costs about 6 % of a call's CPU). A call has no shielded wait
    (no thread), so nothing needs a scope's shield."""

    __slots__ = ("_session",)

    def __init__(self, session: Session) -> None:
        self._session = session

    def __enter__(self) -> _CallGuard:
        session = self._session
        if session._closed:
            raise ClientClosedError(_CLOSED)
        task = asyncio.current_task()
        session.check_loop(None if task is None else task.get_loop())
        self._entered(task)
        session._calls.add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        session._calls.discard(self)
        if self._replaces(exc_type):
            raise ClientClosedError(_CLOSED_MIDWAY) from None
        _raise_if_closed(session, exc)


def _cancel_calls(calls: set[_CallGuard]) -> None:
    """Cancel each task with a call in flight, once: one guard per task (even with calls
    nested in it: a token exchange) turns that into ClientClosedError."""
    current = asyncio.current_task()
    cancelled: set[asyncio.Task[Any] | None] = {None, current}  # current: its next request fails
    for guard in list(calls):
        if guard.task not in cancelled:
            cancelled.add(guard.task)
            guard.cancel()


class _Deadline(_CancelsItsTask):
    """``with _Deadline(seconds, task):`` raises TimeoutError in ``task`` (the current one,
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
