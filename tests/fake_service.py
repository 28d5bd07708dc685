"""A tiny fake MioCreate service for server misbehaviour the emulator cannot produce.

Each test registers the few routes it needs; the fake records every request it answers.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from miocreate_async import DEFAULT_PATHS, Config, MioCreate, Operation, PollSchedule, RetryPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Retries without long waits; polls as fast as the fakes answer.
QUICK_RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
FAST_POLL = PollSchedule(first=0.01, multiplier=1.5, maximum=0.05)

SIGNED = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDFAKE%2F20260101%2Fauto%2Fs3"
    "&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=0123456789abcdef0123456789abcdef"
)


def envelope(data: Any = None, code: int = 200, message: str = "ok") -> web.Response:
    return web.json_response({"code": code, "message": message, "data": data})


def signed_query(date: str = "20990101T000000Z", expires: str = "604800") -> str:
    return SIGNED.format(date=date, expires=expires)


def image_result(url: str, *, size: int = 1000, key: str = "results/out.jpg") -> dict[str, Any]:
    return {
        "size": size,
        "width": 10,
        "height": 10,
        "merge_key": key,
        "merge_url": url,
    }


#: A JPEG's first bytes, padded: enough for the client's format check.
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000


class FakeService:
    """An aiohttp server on a free port; ``route()`` answers, ``hits`` counts by path."""

    def __init__(self) -> None:
        self.app = web.Application(client_max_size=1 << 30)
        self.hits: Counter[str] = Counter()
        self.bodies: list[tuple[str, bytes]] = []
        self._routes: dict[tuple[str, str], Handler] = {}
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        # Routes may be added while the server runs: one catch-all looks them up.
        handler = self._routes.get((request.method, request.path)) or self._routes.get(
            ("*", request.path)
        )
        if handler is None:
            raise web.HTTPNotFound()
        self.hits[request.path] += 1
        return await handler(request)

    def path(self, operation: Operation) -> str:
        return DEFAULT_PATHS[operation]

    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method, path)] = handler

    def api(self, operation: Operation, handler: Handler) -> None:
        self.route("*", self.path(operation), handler)

    def reply(self, operation: Operation, data: Any = None, **kwargs: Any) -> None:
        """A fixed envelope for one operation."""

        async def handler(request: web.Request) -> web.Response:
            await request.read()
            return envelope(data, **kwargs)

        self.api(operation, handler)

    def raw(
        self,
        operation: Operation,
        body: bytes | str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        """A fixed non-envelope reply for one operation."""

        async def handler(request: web.Request) -> web.Response:
            await request.read()
            data = body.encode() if isinstance(body, str) else body
            return web.Response(body=data, status=status, headers=headers)

        self.api(operation, handler)

    def client(self, *, token: str | None = "fake-token", **settings: Any) -> MioCreate:
        settings.setdefault("retry", QUICK_RETRY)
        settings.setdefault("poll", FAST_POLL)
        config = Config(base_url=self.url, **settings)
        if token is None:
            return MioCreate("fake-id", "fake-secret-value", config=config)
        return MioCreate(token=token, config=config)

    async def __aenter__(self) -> FakeService:
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


class RawServer:
    """A bare TCP server writing one canned HTTP reply per connection, then closing it.

    For replies aiohttp's server will not write (a body delimited only by the connection's end).
    """

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests = 0
        self._server: asyncio.Server | None = None
        self.url = ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.reply)
            await writer.drain()
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def storage_url(fake: FakeService, name: str = "o.jpg") -> str:
    """A signed URL of the fake's storage, as the service hands them out."""
    return f"{fake.url}/storage/{name}?{signed_query()}"


def serve_upload_url(fake: FakeService, url: str | None = None, key: str = "u/o.jpg") -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return envelope({"upload_url": url or storage_url(fake), "key": key})

    fake.api(Operation.UPLOAD_URL, handler)


def serve_detail(fake: FakeService, data: Any) -> None:
    fake.reply(Operation.TASK_DETAIL, data)
