"""What uploads and downloads share: progress at a bounded rate, stall detection, timeouts,
and the translation of storage replies and aiohttp failures into the library's errors."""

from __future__ import annotations

import asyncio
import html
import inspect
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import anyio

from ._config import Config
from ._errors import (
    ConnectError,
    InvalidInputError,
    MioCreateError,
    MioCreateTimeoutError,
    StorageError,
    TransportError,
    UrlExpiredError,
)
from ._models import ProgressCallback
from ._presigned import url_expires_at
from ._redact import redact_url

__all__ = [
    "Progress",
    "StallWatchdog",
    "client_timeout",
    "storage_error",
    "transport_error",
    "watch_stalls",
]

#: At most this many progress calls per second (plus the first and the final one): a progress
#: bar redraws smoothly and a 500 MB transfer does not make thousands of calls.
MAX_RATE = 10.0


class Progress:
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


class StallWatchdog:
    """Remembers when bytes last moved; ``watch_stalls`` fails the block when none did."""

    def __init__(self, stall_timeout: float) -> None:
        self.stall_timeout = stall_timeout
        self.last_moved = anyio.current_time()
        self.stalled = False

    def touch(self) -> None:
        self.last_moved = anyio.current_time()

    async def _run(self, scope: anyio.CancelScope) -> None:
        while True:
            remaining = self.last_moved + self.stall_timeout - anyio.current_time()
            if remaining <= 0:
                self.stalled = True
                scope.cancel()
                return
            await anyio.sleep(remaining)


@asynccontextmanager
async def watch_stalls(watchdog: StallWatchdog, what: str) -> AsyncIterator[None]:
    """Run the block under ``watchdog``: no total deadline, only "no progress for too long".

    A slow but moving 500 MB upload never times out; a dead one fails after ``stall_timeout``.
    """
    async with anyio.create_task_group() as group:
        group.start_soon(watchdog._run, group.cancel_scope)
        try:
            yield
        finally:
            group.cancel_scope.cancel()
    if watchdog.stalled:
        raise MioCreateTimeoutError(
            f"{what} stalled: no data moved for {watchdog.stall_timeout:g} s"
        )


def client_timeout(config: Config) -> aiohttp.ClientTimeout:
    """No total deadline (a slow 500 MB transfer is fine while it moves): a connect deadline,
    and ``sock_read`` as the stall timeout of the reply."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=config.connect_timeout,
        sock_connect=config.connect_timeout,
        sock_read=config.stall_timeout,
    )


# --- storage replies --------------------------------------------------------------------------

#: How much of an error reply is read: S3 error documents are a few hundred bytes.
ERROR_BODY_LIMIT = 64 * 1024

_XML_CODE = re.compile(rb"<Code>\s*([^<]{1,200}?)\s*</Code>")
_XML_MESSAGE = re.compile(rb"<Message>\s*([^<]{0,2000}?)\s*</Message>")
_EXPIRED_CODES = frozenset({"ExpiredRequest", "ExpiredToken", "RequestExpired"})


def parse_storage_error(body: bytes) -> tuple[str | None, str | None]:
    """``(Code, Message)`` of an S3-style XML error document; regexes, not an XML parser, since
    the document comes from the network and only two fields are wanted."""
    code = _XML_CODE.search(body)
    message = _XML_MESSAGE.search(body)
    return (
        html.unescape(code.group(1).decode("utf-8", "replace")) if code else None,
        html.unescape(message.group(1).decode("utf-8", "replace")) if message else None,
    )


def is_expired_reply(status: int, code: str | None, message: str | None, url: str) -> bool:
    """S3 says ``AccessDenied`` "Request has expired", R2 says ``ExpiredRequest``; a bare 403
    for an URL past its ``X-Amz-Expires`` means the same."""
    if code in _EXPIRED_CODES:
        return True
    if status != 403:
        return False
    if code == "AccessDenied" and message and "expired" in message.lower():
        return True
    expires_at = url_expires_at(url)
    return code is None and expires_at is not None and expires_at <= time.time()


def storage_error(
    status: int, body: bytes, url: str, *, operation: str, reason: str = ""
) -> StorageError:
    """The typed error for a storage reply with an error status, carrying its Code and Message."""
    code, message = parse_storage_error(body)
    shown = redact_url(url)
    if is_expired_reply(status, code, message, url):
        detail = f"{code}: {message}" if code and message else (code or message or "expired")
        return UrlExpiredError(
            f"the signed URL has expired ({detail}): {shown}",
            operation=operation,
            http_status=status,
            storage_code=code,
        )
    if code or message:
        text = f"storage refused the {operation}: {code or 'error'}: {message or '(no message)'}"
    else:
        text = f"storage answered HTTP {status} {reason}".rstrip() + f" to the {operation}"
    return StorageError(
        f"{text} ({shown})", operation=operation, http_status=status, storage_code=code
    )


# --- aiohttp failures -------------------------------------------------------------------------


def transport_error(exc: BaseException, *, operation: str, url: str) -> MioCreateError:
    """The typed error for an aiohttp/OS failure.

    aiohttp's own messages often contain the full URL, signature included, so they are not
    copied: the error names the failure and the redacted URL only (raise it ``from None``).
    """
    shown = redact_url(url)
    reason = type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        reason = f"{reason}: {exc.strerror}"
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidInputError(f"not a valid URL for the {operation}: {shown}")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectError(
            f"timed out connecting to storage for the {operation} ({shown})", operation=operation
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(
            f"could not connect to storage for the {operation} ({reason}; {shown})",
            operation=operation,
        )
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError, TimeoutError)):
        return MioCreateTimeoutError(
            f"storage stopped answering during the {operation} ({reason}; {shown})",
            operation=operation,
        )
    return TransportError(
        f"the connection to storage broke during the {operation} ({reason}; {shown})",
        operation=operation,
    )
