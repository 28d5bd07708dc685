"""The client's own session goes through the proxy the standard environment variables name
(``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``), and never for a loopback host: the emulator and
the test suite keep working with an office-wide proxy set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from miocreate_async import ConnectError, MioCreate, RetryPolicy
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio

#: A host no resolver knows (RFC 2606): reached only through the proxy, which maps it.
API_HOST = "api.miocreate.test"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY")


class ForwardingProxy:
    """A plain HTTP forward proxy on 127.0.0.1 that records each request and sends those for
    ``API_HOST`` on to the emulator (a tunnel, ``CONNECT``, is recorded and refused)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ForwardingProxy:
        app = web.Application(middlewares=[self._tunnel])
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()
        assert self._runner is not None
        await self._runner.cleanup()

    def _record(self, request: web.Request, target: str) -> None:
        authorization = request.headers.get("Proxy-Authorization")
        self.seen.append(
            {"method": request.method, "target": target, "proxy_authorization": authorization}
        )

    @web.middleware
    async def _tunnel(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # A CONNECT's target is ``host:port``, which no route matches: answered here.
        if request.method != "CONNECT":
            return await handler(request)  # type: ignore[no-any-return]
        self._record(request, request.raw_path)
        return web.Response(status=403, text="no tunnels through this proxy")

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self._record(request, str(request.url))
        if request.host.split(":")[0] != API_HOST:
            return web.Response(status=403, text="not through this proxy")
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in ("host", "proxy-authorization", "proxy-connection")
        }
        async with self._http.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
        ) as reply:
            body = await reply.read()
            return web.Response(
                status=reply.status, body=body, content_type=reply.content_type or None
            )


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
async def proxy(emulator: Emulator) -> AsyncIterator[ForwardingProxy]:
    async with ForwardingProxy(emulator.url) as running:
        yield running


def through(emulator: Emulator, base_url: str) -> MioCreate:
    return MioCreate(
        emulator.client_id,
        emulator.client_secret,
        base_url=base_url,
        retry=RetryPolicy(attempts=1),
    )


async def test_api_calls_go_through_http_proxy(
    emulator: Emulator, proxy: ForwardingProxy, no_proxy_env: pytest.MonkeyPatch
) -> None:
    no_proxy_env.setenv("HTTP_PROXY", proxy.url.replace("://", "://user:pw@"))
    async with through(emulator, f"http://{API_HOST}") as client:
        target = await client.get_upload_url("photo.jpg")
    assert target.key
    # The token exchange and the call, each sent to the proxy in absolute form, with the
    # proxy's own credentials from the variable.
    assert [seen["target"] for seen in proxy.seen] == [
        f"http://{API_HOST}/v1/oauth/token",
        f"http://{API_HOST}/v1/source/upload-url",
    ]
    assert all(seen["proxy_authorization"] == "Basic dXNlcjpwdw==" for seen in proxy.seen)
    assert len(emulator.ledger["requests"]) >= 2  # and they reached the service


async def test_https_calls_tunnel_through_https_proxy(
    emulator: Emulator, proxy: ForwardingProxy, no_proxy_env: pytest.MonkeyPatch
) -> None:
    no_proxy_env.setenv("https_proxy", proxy.url)
    async with through(emulator, f"https://{API_HOST}") as client:
        with pytest.raises(ConnectError):
            await client.get_upload_url("photo.jpg")
    assert [(seen["method"], seen["target"]) for seen in proxy.seen] == [
        ("CONNECT", f"{API_HOST}:443")
    ]


async def test_no_proxy_sends_directly(
    emulator: Emulator, proxy: ForwardingProxy, no_proxy_env: pytest.MonkeyPatch
) -> None:
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    no_proxy_env.setenv("NO_PROXY", f"example.org,{API_HOST}")
    async with through(emulator, f"http://{API_HOST}") as client:
        with pytest.raises(ConnectError):  # directly: nothing resolves the name
            await client.get_upload_url("photo.jpg")
    assert proxy.seen == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_loopback_is_never_proxied(
    emulator: Emulator,
    proxy: ForwardingProxy,
    no_proxy_env: pytest.MonkeyPatch,
    sample_photo: Any,
    tmp_path: Any,
    host: str,
) -> None:
    # An office-wide proxy, no NO_PROXY: the emulator (and the tests' clients) still answer.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        no_proxy_env.setenv(name, proxy.url)
    base_url = emulator.url.replace("127.0.0.1", host)
    async with MioCreate(emulator.client_id, emulator.client_secret, base_url=base_url) as client:
        key = await client.upload(sample_photo)
        url = await client.get_access_url(key)
        await client.download(url, tmp_path / "back.jpg")
    assert (tmp_path / "back.jpg").read_bytes() == sample_photo.read_bytes()
    assert proxy.seen == []
