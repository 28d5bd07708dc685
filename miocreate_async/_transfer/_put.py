"""The streamed presigned PUT.

A file is never read whole: it is sent as one PUT with a true ``Content-Length`` (S3-style
stores refuse chunked bodies), in chunks read off the event loop. Only the presigned URL's
signature authorises the PUT; the API token never goes to the storage host.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import BinaryIO
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import aiohttp.payload
import anyio
import attrs
from aiohttp.abc import AbstractStreamWriter
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from .._config import Config
from .._errors import (
    InvalidInputError,
    MioCreateError,
    MioCreateTimeoutError,
    SourceNotFoundError,
    UrlExpiredError,
)
from .._models import ProgressCallback, UploadTarget
from .._presigned import url_expires_at
from .._proxy import proxy_for
from .._redact import redact_url
from .._retry import is_transient, parse_retry_after
from .._telemetry import retried
from ._inputs import LocalFile, PreparedUpload, source_failure
from ._progress import ProgressMeter
from ._replies import (
    ERROR_BODY_LIMIT,
    check_url,
    client_timeout,
    log_transfer,
    refuse_session_auth,
    storage_error,
    transport_error,
    wire_url,
)

__all__ = ["put_object"]

#: Smaller chunks from a stream are gathered up to this size before they are sent.
COALESCE_BYTES = 64 * 1024
#: Fresh upload URLs asked for in one upload when storage keeps saying "expired".
MAX_RENEWALS = 3
#: An URL this close to its expiry is renewed before sending: storage checks it on arrival.
EXPIRY_MARGIN = 5.0
_OPERATION = "upload"


# --- the PUT ----------------------------------------------------------------------------------


@attrs.define
class _Attempt:
    """What one PUT attempt shares between the request, the producer and the monitor."""

    upload: PreparedUpload
    sent: int = 0
    response_started: bool = False
    finished: bool = False
    source_error: BaseException | None = None
    callback_error: BaseException | None = None


class _Body:
    """The request body handed to aiohttp: chunks from the producer, counted as they go."""

    def __init__(self, receive: ObjectReceiveStream[bytes], attempt: _Attempt) -> None:
        self._receive = receive
        self._attempt = attempt

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if self._attempt.source_error is not None:
                # Fails the request instead of sending a body shorter than Content-Length.
                error = self._attempt.source_error
                raise error from error.__cause__  # the source's own reason, not EndOfStream
            raise StopAsyncIteration from None
        self._attempt.sent += len(chunk)
        return chunk


class _FileBody(aiohttp.payload.Payload):
    """A regular file as the request body, sent by the kernel from the open handle with
    ``loop.sendfile``: no read into Python, no copy, no thread hop. Where the connection cannot
    (TLS, uvloop) the same handle is read instead, with ``os.pread`` off the event loop.

    The handle is checked against the file the local checks saw before its last bytes go (a
    file rewritten meanwhile fails the request, so storage never gets it whole) and after.

    Every write sends the whole file, as aiohttp expects of a payload it does not see as
    consumed: when the connection dies under a PUT (an idempotent request), aiohttp resends it
    once on a fresh connection and writes this same payload again.
    """

    #: The last bytes, held back until the file is checked again.
    TAIL = 64 * 1024

    def __init__(self, handle: BinaryIO, file: LocalFile, attempt: _Attempt) -> None:
        super().__init__(handle, content_type=attempt.upload.content_type)
        self._size = file.size
        self._handle = handle
        self._file = file
        self._attempt = attempt

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a file body is binary")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        size, attempt = self._file.size, self._attempt
        # A resend starts again from byte 0, whatever the write before it got out: resuming
        # would send fewer bytes than the Content-Length, and storage would wait for the rest.
        attempt.sent = 0
        body = size - min(self.TAIL, size)
        transport = _sendfile_transport(writer)
        piece = _MIN_PIECE
        while attempt.sent < size:
            if attempt.sent == body:
                await self._check()
            end = body if attempt.sent < body else size
            count = min(piece, end - attempt.sent)
            started = time.monotonic()
            if transport is not None:
                try:
                    sent = await asyncio.get_running_loop().sendfile(
                        transport, self._handle, attempt.sent, count, fallback=False
                    )
                except (asyncio.SendfileNotAvailableError, NotImplementedError):
                    transport = None  # read it instead, from where the kernel stopped
                    continue
                except RuntimeError as exc:  # "Transport is closing": the server hung up
                    raise ConnectionResetError(f"the connection closed: {exc}") from None
            else:
                sent = await self._read_and_write(writer, count)
            if sent == 0:
                raise self._failed(
                    InvalidInputError(
                        f"{self._file.path!r} ended after {attempt.sent} of its {size} bytes "
                        "(was the file changed during the upload?)"
                    )
                )
            attempt.sent += sent
            # Pieces of about a quarter second: progress and the stall watch keep moving.
            elapsed = max(time.monotonic() - started, 1e-6)
            piece = min(_MAX_PIECE, max(_MIN_PIECE, int(sent / elapsed / 4)))
        # A change within the last bytes' send is still told, though storage may have them.
        await self._check()

    async def _read_and_write(self, writer: AbstractStreamWriter, count: int) -> int:
        try:
            data = await anyio.to_thread.run_sync(
                os.pread, self._handle.fileno(), count, self._attempt.sent
            )
        except OSError as exc:
            raise self._failed(
                SourceNotFoundError(
                    f"reading {self._file.path!r} failed during the upload: {exc.strerror or exc}"
                )
            ) from None
        if data:
            await writer.write(data)
        return len(data)

    async def _check(self) -> None:
        try:
            await anyio.to_thread.run_sync(self._file.check, self._handle)
        except MioCreateError as error:
            raise self._failed(error) from None

    def _failed(self, error: MioCreateError) -> MioCreateError:
        """The source's own failure: the request fails with it, not with a vague one."""
        self._attempt.source_error = error
        return error


#: Bytes per sendfile call or read: between these, by the speed of the connection.
_MIN_PIECE = 256 * 1024
_MAX_PIECE = 16 * 1024 * 1024


def _sendfile_transport(writer: AbstractStreamWriter) -> asyncio.Transport | None:
    """The connection's transport, once the headers aiohttp holds back are sent, or None."""
    transport: asyncio.Transport | None = getattr(writer, "transport", None)
    send_headers = getattr(writer, "send_headers", None)
    if transport is None or send_headers is None:
        return None
    send_headers()
    return transport


async def put_object(
    http: aiohttp.ClientSession,
    upload: PreparedUpload,
    *,
    get_target: Callable[[], Awaitable[UploadTarget]],
    config: Config,
    limiter: anyio.CapacityLimiter,
    progress: ProgressCallback | None = None,
) -> str:
    """PUT ``upload`` to a presigned URL from ``get_target()``; returns the stored key.

    An expired URL (known before sending, or said by storage) is replaced by a fresh one;
    transient failures are retried from the start with backoff; other refusals raise.
    """
    refuse_session_auth(http)
    meter = ProgressMeter(progress, upload.size)
    targets = _Targets(get_target)
    await targets.renew()
    # A stream is read once: its failures are not retried, and say why.
    retryable = is_transient if upload.replayable else _never
    async for attempt in config.retry.retrying(on=retryable, what=_OPERATION):
        with attempt:
            if attempt.number > 1:
                retried(attempt.number)
                await meter.restart()
            key = await _put_until_not_expired(http, upload, targets, config, limiter, meter)
    await meter.finish(upload.size)
    return key


def _never(_: MioCreateError) -> bool:
    return False


class _Targets:
    """The upload URL in use, and how many times it was renewed."""

    def __init__(self, get_target: Callable[[], Awaitable[UploadTarget]]) -> None:
        self._get_target = get_target
        self.target: UploadTarget | None = None
        self.renewals = -1  # the first URL is no renewal
        self.trust_local_clock = True

    async def renew(self) -> UploadTarget:
        self.renewals += 1
        target = await self._get_target()
        check_url(target.upload_url, _OPERATION)
        self.target = target
        return target

    async def usable(self) -> UploadTarget:
        """The URL, renewed first when this machine's clock says it has expired."""
        target = self.target
        assert target is not None
        while self.trust_local_clock and _expired(target.upload_url):
            # Known expired: ask for another rather than send 500 MB to be refused.
            if self.renewals >= MAX_RENEWALS:
                raise UrlExpiredError(
                    f"every upload URL given was already expired ({redact_url(target.upload_url)})",
                    operation=_OPERATION,
                )
            target = await self.renew()
            # A fresh URL that looks expired means this machine's clock is off: let storage,
            # whose clock counts, decide from now on.
            self.trust_local_clock = not _expired(target.upload_url)
        return target


async def _put_until_not_expired(
    http: aiohttp.ClientSession,
    upload: PreparedUpload,
    targets: _Targets,
    config: Config,
    limiter: anyio.CapacityLimiter,
    meter: ProgressMeter,
) -> str:
    """One try of the PUT, on fresh URLs for as long as storage says the URL expired."""
    while True:
        async with limiter:
            # Checked once a transfer slot is ours: the wait for one can outlast an URL.
            target = await targets.usable()
            error = await _attempt(http, upload, target.upload_url, config, meter)
        if error is None:
            return target.key
        if not upload.replayable and (is_transient(error) or isinstance(error, UrlExpiredError)):
            raise _not_replayable(error)
        if not isinstance(error, UrlExpiredError):
            raise error
        if targets.renewals >= MAX_RENEWALS:
            raise error
        await targets.renew()
        await meter.restart()


def _expired(url: str) -> bool:
    expires_at = url_expires_at(url)
    return expires_at is not None and expires_at - EXPIRY_MARGIN <= time.time()


def _not_replayable(error: MioCreateError) -> MioCreateError:
    return type(error)(
        f"{error.message}; not retried: the upload's source is a StreamSource, which can be "
        "read only once (upload from a path, bytes or a seekable file for automatic retries)",
        code=error.code,
        operation=error.operation,
        http_status=error.http_status,
        task_id=error.task_id,
        storage_code=error.storage_code,
    )


def _signed_headers(url: str) -> frozenset[str] | None:
    """The headers a SigV4-style URL signs (S3, GCS), or None when it does not say."""
    query = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}
    signed = query.get("x-amz-signedheaders", query.get("x-goog-signedheaders"))
    if signed is None:
        return None
    return frozenset(h.strip().lower() for h in signed.split(";"))


def _headers(upload: PreparedUpload, url: str) -> tuple[dict[str, str], frozenset[str]]:
    """Headers of the PUT and the automatic ones aiohttp must leave out."""
    # A true length, never chunked: S3-style stores answer 411/501 otherwise.
    headers = {"Content-Length": str(upload.size)}
    if _signed_headers(url) is not None:
        # Signed (the service signed the type of the file's name, which the local checks
        # confirmed) or unsigned and harmless: stored objects then carry their real type.
        headers["Content-Type"] = upload.content_type
        return headers, frozenset()
    # A URL that does not list its signed headers (SigV2 signs the Content-Type, empty when
    # none is sent): send none rather than a wrong one.
    return headers, frozenset({"Content-Type"})


async def _attempt(
    http: aiohttp.ClientSession,
    upload: PreparedUpload,
    url: str,
    config: Config,
    meter: ProgressMeter,
) -> MioCreateError | None:
    """One PUT: None when stored, else the error to retry or raise (its Retry-After kept)."""
    attempt = _Attempt(upload)
    error: MioCreateError | None = None
    answered = False
    request_error: BaseException | None = None
    # A regular file goes from one handle, opened (and checked) once for this attempt.
    handle = None if upload.file is None else await anyio.to_thread.run_sync(upload.file.open)
    send, receive = anyio.create_memory_object_stream[bytes](1)
    try:
        async with anyio.create_task_group() as group:
            body: _Body | _FileBody
            if handle is not None:
                assert upload.file is not None
                body = _FileBody(handle, upload.file, attempt)
            else:
                body = _Body(receive, attempt)
                group.start_soon(_produce, attempt, send)
            group.start_soon(_monitor, attempt, meter, config.stall_timeout, group.cancel_scope)
            try:
                error = await _request(http, upload, url, config, body, attempt)
                answered = True
            except Exception as exc:
                # Raised after the group, so callers see it as is, not in an ExceptionGroup.
                request_error = exc
            finally:
                attempt.finished = True
                group.cancel_scope.cancel()
                receive.close()
                send.close()
    finally:
        if handle is not None:
            handle.close()
    for raised in (attempt.callback_error, attempt.source_error, request_error):
        if raised is not None:
            raise raised
    if not answered:  # the monitor cancelled the request
        return MioCreateTimeoutError(
            f"the upload stalled: no data moved for {config.stall_timeout:g} s ({redact_url(url)})",
            operation=_OPERATION,
        )
    return error


async def _request(
    http: aiohttp.ClientSession,
    upload: PreparedUpload,
    url: str,
    config: Config,
    body: _Body | _FileBody,
    attempt: _Attempt,
) -> MioCreateError | None:
    headers, skip = _headers(upload, url)
    try:
        async with http.put(
            wire_url(url),
            data=body,
            headers=headers,
            skip_auto_headers=skip,
            timeout=client_timeout(config),
            allow_redirects=False,
            raise_for_status=False,
            proxy=proxy_for(url),
        ) as response:
            attempt.response_started = True
            # Storage replies are small; a bounded read keeps a hostile one from filling memory.
            content = await response.content.read(ERROR_BODY_LIMIT)
            log_transfer("PUT", url, response.status, upload.size)
            if 200 <= response.status < 300:
                return None
            error = storage_error(
                response.status, content, url, operation=_OPERATION, reason=response.reason or ""
            )
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return error
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        return transport_error(exc, operation=_OPERATION, url=url)


async def _produce(attempt: _Attempt, send: ObjectSendStream[bytes]) -> None:
    """Read the source into the bounded stream: at most one chunk waits in memory."""
    upload = attempt.upload
    count = 0
    pending = bytearray()
    async with send:
        try:
            async with aclosing(upload.chunks()) as chunks:
                async for chunk in chunks:
                    count += len(chunk)
                    if count > upload.size:
                        raise InvalidInputError(
                            f"{upload.file_name!r} gave more than its declared {upload.size} bytes"
                        )
                    if not pending and len(chunk) >= COALESCE_BYTES:
                        await send.send(chunk)
                        continue
                    # A stream of tiny chunks is sent in blocks: one write per few bytes
                    # would cost far more than the copy.
                    pending += chunk
                    if len(pending) >= COALESCE_BYTES:
                        await send.send(bytes(pending))
                        pending.clear()
            if count < upload.size:
                raise InvalidInputError(
                    f"{upload.file_name!r} ended after {count} of its declared "
                    f"{upload.size} bytes (was the file changed during the upload?)"
                )
            if pending:
                await send.send(bytes(pending))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the request ended first; nothing more to send
        except Exception as exc:
            # Kept, not raised: the request fails with it instead of a vague connection error.
            attempt.source_error = source_failure(exc, upload.file_name)


async def _monitor(
    attempt: _Attempt, meter: ProgressMeter, stall_timeout: float, scope: anyio.CancelScope
) -> None:
    """Report progress at a bounded rate, and cancel the attempt when the body stalls.

    Only the body is watched: once the reply has started, aiohttp's ``sock_read`` applies.
    """
    tick = min(0.1, stall_timeout / 4)
    last, moved_at = attempt.sent, anyio.current_time()
    while not attempt.finished:
        await anyio.sleep(tick)
        now = anyio.current_time()
        if attempt.sent != last:
            last, moved_at = attempt.sent, now
            try:
                await meter.update(last)
            except Exception as exc:
                attempt.callback_error = exc
                scope.cancel()
                return
        elif not attempt.response_started and now - moved_at >= stall_timeout:
            scope.cancel()
            return
