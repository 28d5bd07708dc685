"""The aiohttp application: API routes, presigned storage, and the admin routes.

Every API request goes through one pipeline: record it, apply a scenario or a random fault,
check quota and token, then run the operation. Admin routes skip all of that.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

from aiohttp import web

from .._converter import unstructure
from .._operations import Operation
from .._redact import redact_url
from .._wire import Envelope
from ._api import HANDLERS, MESSAGES, ApiError, Call
from ._faults import Rule, rule_from_json
from ._ledger import RequestRecord
from ._s3 import S3Error
from ._signing import STORAGE_PREFIX
from ._state import State

__all__ = ["ADMIN_PREFIX", "REQUEST_ID_HEADER", "build_app"]

ADMIN_PREFIX = "/_emulator/"
REQUEST_ID_HEADER = "x-request-id"
# S3's limit for one PUT; larger bodies are refused before a byte is stored.
_MAX_PUT_BYTES = 5 * 1024**3
_CHUNK = 1 << 16
_MALFORMED = object()
#: The ledger record of the request being handled, for the access log (handlers run in the
#: middleware's task, so it sees what they set).
_RECORD: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
    "miocreate_emulator_record", default=None
)
_log = logging.getLogger("miocreate_async.emulator")

_HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _keys_in(value: Any) -> Iterator[str]:
    """Every string in a request body: keys, file names and ids a scenario may match."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _keys_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys_in(item)
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        yield str(value)


async def _read_json(request: web.Request) -> Any:
    if not request.body_exists:
        return None
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _MALFORMED


async def _throttled(chunks: AsyncIterator[bytes], rate: float) -> AsyncIterator[bytes]:
    """``chunks`` no faster than ``rate`` bytes a second: the reader waits, so TCP's flow control
    slows the sender down, as a slow link would. HTTP/1.1 carries one request at a time on a
    connection, so this caps the connection."""
    loop = asyncio.get_running_loop()
    started, received = loop.time(), 0
    async for chunk in chunks:
        received += len(chunk)
        yield chunk
        ahead = received / rate - (loop.time() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)


@web.middleware
async def _access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request: method, redacted path, status (or "cut"), envelope code, fault."""
    started = time.monotonic()
    status = "cut"
    reset = _RECORD.set(None)
    try:
        response = await handler(request)
        status = str(response.status)
        return response
    finally:
        record = _RECORD.get()
        _RECORD.reset(reset)
        extra = ""
        if record is not None:
            if record.status is None:
                status = "cut"
            if record.code is not None:
                extra += f" code={record.code}"
            if record.fault:
                extra += f" fault={record.fault}"
        _log.info(
            "%s %s %s %s%s %.1fms",
            request.remote,
            request.method,
            redact_url(request.path_qs),
            status,
            extra,
            (time.monotonic() - started) * 1000,
        )


def _cut(request: web.Request, record: RequestRecord) -> web.StreamResponse:
    """Close the connection without a reply, as a dying server or proxy does."""
    record.status = None
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError  # aiohttp drops a handler cancelled on a closed connection


class _Routes:
    def __init__(self, state: State) -> None:
        self._state = state

    # --- the API ------------------------------------------------------------------------------

    def api(self, operation: Operation) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            reply = await self._api(request, operation)
            # Every API reply carries a request id, as a gateway in front of a service adds
            # (the client puts it on errors, results and log records); the ledger keeps it.
            record = _RECORD.get()
            if record is not None:
                record.request_id = reply.headers[REQUEST_ID_HEADER] = uuid.uuid4().hex
            return reply

        return handler

    def _envelope(
        self, record: RequestRecord, code: int, message: str | None = None, data: Any = None
    ) -> web.Response:
        record.status, record.code = 200, code
        envelope = Envelope(code, message if message is not None else MESSAGES.get(code, ""), data)
        # Errors come with HTTP 200 too: clients decide by the envelope's code.
        return web.json_response(unstructure(envelope))

    async def _fault(
        self, request: web.Request, record: RequestRecord, fault: str | None, rule: Rule | None
    ) -> web.StreamResponse | None:
        """The reply a fault replaces the real one with; None lets the request go on."""
        record.fault = fault
        if fault == "cut":
            return _cut(request, record)
        if fault == "slow":
            delay = rule.delay if rule is not None and rule.delay is not None else None
            await asyncio.sleep(self._state.settings.slow_delay if delay is None else delay)
        elif fault == "html502":
            record.status = 502
            return web.Response(status=502, text=_HTML_502, content_type="text/html")
        elif fault == "http" and rule is not None and rule.http_status is not None:
            record.status = rule.http_status
            headers = {}
            if rule.retry_after is not None:
                headers["Retry-After"] = f"{rule.retry_after:g}"
            return web.Response(
                status=rule.http_status,
                headers=headers,
                text=rule.message or "",
                content_type="text/plain",
            )
        return None

    async def _api(self, request: web.Request, operation: Operation) -> web.StreamResponse:
        state = self._state
        record = self._record(request, operation.value)
        body = await _read_json(request)
        rule = state.scenarios.take(operation.value, [*_keys_in(body), *request.query.values()])
        drawn = state.dice.draw(operation.creates_task)  # drawn always: a seed replays faults
        fault = rule.fault if rule is not None else drawn
        if fault == "fail":
            record.fault = fault
            return self._envelope(record, 500)
        reply = await self._fault(request, record, fault, rule)
        if reply is not None:
            return reply
        if rule is not None and rule.code is not None:
            record.fault = record.fault or "code"
            return self._envelope(record, rule.code, rule.message)
        if state.over_quota():
            return self._envelope(record, 802)
        if operation is not Operation.TOKEN and not state.authorized(
            request.headers.get("Authorization")
        ):
            return self._envelope(record, 401)
        if body is _MALFORMED or (body is not None and not isinstance(body, dict)):
            return self._envelope(record, 400, f"{MESSAGES[400]}: the body is not a JSON object")
        base_url = f"{request.scheme}://{request.host}"
        call = Call(state, operation, body, request.query, rule, base_url)
        try:
            data = await HANDLERS[operation](call)
        except ApiError as error:
            return self._envelope(record, error.code, error.message)
        if fault == "cut_after":
            return _cut(request, record)
        return self._envelope(record, 200, data=data)

    # --- presigned storage --------------------------------------------------------------------

    async def _storage_fault(
        self, request: web.Request, record: RequestRecord, key: str
    ) -> web.StreamResponse | None:
        state = self._state
        if request.headers.get("Authorization"):
            state.ledger.leak(record)
        rule = state.scenarios.take(record.operation, [key])
        drawn = state.dice.draw(False) if state.settings.storage_faults else None
        fault = rule.fault if rule is not None else drawn
        if fault == "fail":
            fault = "html502"
        reply = await self._fault(request, record, fault, rule)
        if reply is None and rule is not None and rule.code is not None:
            record.fault = record.fault or "code"
            raise S3Error(rule.code, "InternalError", rule.message or "Injected by a scenario")
        return reply

    def _record(self, request: web.Request, operation: str) -> RequestRecord:
        state = self._state
        record = state.ledger.request(
            request.method, request.path_qs, operation, state.clock.now(), request.headers
        )
        _RECORD.set(record)
        return record

    async def storage_put(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        record = self._record(request, "storage_put")
        try:
            reply = await self._storage_fault(request, record, key)
            if reply is not None:
                return reply
            return await self._put(request, record, key)
        except S3Error as error:
            record.status = error.status
            return error.response(STORAGE_PREFIX + key, uuid.uuid4().hex)

    async def _put(self, request: web.Request, record: RequestRecord, key: str) -> web.Response:
        state = self._state
        state.signer.check("PUT", key, request.query)
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            raise S3Error(
                501,
                "NotImplemented",
                "A header you provided implies functionality that is not implemented: "
                "Transfer-Encoding",
            )
        header = request.headers.get("Content-Length")
        if header is None:
            raise S3Error(
                411, "MissingContentLength", "You must provide the Content-Length HTTP header."
            )
        if not header.isdigit():
            raise S3Error(400, "InvalidArgument", "Content-Length is not a number")
        length = int(header)
        if length > _MAX_PUT_BYTES:
            raise S3Error(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            )
        upload = state.ledger.uploads.get(key)
        if upload is not None:
            upload.content_length = length
        chunks: AsyncIterator[bytes] = request.content.iter_chunked(_CHUNK)
        rate = state.settings.bandwidth_per_connection
        if rate is not None:
            chunks = _throttled(chunks, rate)
        try:
            stored = await state.storage.receive(key, chunks, length)
        except S3Error:
            if upload is not None:
                upload.status = "incomplete"
            raise
        if upload is not None:
            upload.status, upload.size, upload.sha256 = "stored", stored.size, stored.sha256
            upload.media_type = stored.media.value if stored.media else None
        record.status = 200
        return web.Response(status=200, headers={"ETag": f'"{(stored.sha256 or "")[:32]}"'})

    async def storage_get(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        record = self._record(request, "storage_get")
        try:
            reply = await self._storage_fault(request, record, key)
            if reply is not None:
                return reply
            self._state.signer.check("GET", key, request.query)
            stored = self._state.storage.get(key)
            if stored is None:
                raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
        except S3Error as error:
            record.status = error.status
            return error.response(STORAGE_PREFIX + key, uuid.uuid4().hex)
        record.status = 200
        content_type = stored.media.content_type if stored.media else "application/octet-stream"
        return web.FileResponse(stored.path, headers={"Content-Type": content_type})

    # --- admin --------------------------------------------------------------------------------

    async def ledger(self, request: web.Request) -> web.Response:
        return web.json_response(self._state.snapshot())

    async def reset(self, request: web.Request) -> web.Response:
        self._state.reset()
        return web.json_response({"ok": True})

    async def scenario(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            items = data if isinstance(data, list) else [data]
            rules = [rule_from_json(item) for item in items]
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        for rule in rules:
            self._state.scenarios.add(rule)
        return web.json_response({"ok": True, "pending": self._state.scenarios.pending()})

    async def clock(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            self._state.clock.advance(float(data.get("advance", 0)))
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "clock": self._state.clock.now()})


def build_app(state: State) -> web.Application:
    app = web.Application(middlewares=[_access_log] if state.settings.access_log else [])
    routes = _Routes(state)
    for operation, path in state.settings.paths.items():
        handler = routes.api(operation)
        app.router.add_post(path, handler)
        if operation is Operation.TASK_DETAIL:
            app.router.add_get(path, handler)
    app.router.add_put(STORAGE_PREFIX + "{key:.+}", routes.storage_put)
    app.router.add_get(STORAGE_PREFIX + "{key:.+}", routes.storage_get)
    app.router.add_get(ADMIN_PREFIX + "ledger", routes.ledger)
    app.router.add_post(ADMIN_PREFIX + "reset", routes.reset)
    app.router.add_post(ADMIN_PREFIX + "scenario", routes.scenario)
    app.router.add_post(ADMIN_PREFIX + "clock", routes.clock)
    return app
