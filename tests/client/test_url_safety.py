"""URL inputs come from a bot's or a web app's users: they are read only from global addresses
(unless the user opts in), each redirect checked, within a deadline. A tiny local server plays
the "internal service" a bot user would like the bot to read; it must receive no request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from miocreate_async import (
    Config,
    InvalidInputError,
    MioCreate,
    RetryPolicy,
    SourceNotFoundError,
    SourceTooSlowError,
)
from miocreate_async.emulator import Emulator, write_sample_photo

pytestmark = pytest.mark.anyio

JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 4000


class Service:
    """An aiohttp server on a loopback address; ``hits`` lists the paths it was asked for."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.hits: list[str] = []
        self.routes: dict[str, Callable[[web.Request], object]] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        route = self.routes.get(request.path)
        if route is None:
            return web.Response(body=JPEG, content_type="image/jpeg")
        result = route(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, web.StreamResponse)
        return result


async def serve(host: str) -> AsyncIterator[Service]:
    service = Service(host)
    app = web.Application()
    app.router.add_get("/{tail:.*}", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    service.url = f"http://{host}:{port}"
    try:
        yield service
    finally:
        await runner.cleanup()


@pytest.fixture
async def internal() -> AsyncIterator[Service]:
    """The bot host's loopback service (127.0.0.1)."""
    async for service in serve("127.0.0.1"):
        yield service


@pytest.fixture
async def allowed() -> AsyncIterator[Service]:
    """A source on 127.0.0.2, the one address the ``trusting`` client may read."""
    async for service in serve("127.0.0.2"):
        yield service


@pytest.fixture
async def default_client(emulator: Emulator) -> AsyncIterator[MioCreate]:
    """A client as a bot makes one: no opt-in, so loopback sources are refused."""
    async with MioCreate(emulator.client_id, emulator.client_secret, base_url=emulator.url) as mc:
        yield mc


@pytest.fixture
async def trusting(emulator: Emulator) -> AsyncIterator[MioCreate]:
    config = Config(
        base_url=emulator.url,
        url_sources=["127.0.0.2"],
        source_timeout=1.5,
        retry=RetryPolicy(attempts=1),
    )
    async with MioCreate(emulator.client_id, emulator.client_secret, config=config) as mc:
        yield mc


def redirect(location: str, status: int = 302) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


def upload_url_requests(emu: Emulator) -> int:
    return sum(r["operation"] == "upload_url" for r in emu.ledger["requests"])


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::1]",
        "0.0.0.0",
        "[::]",
        "[::1]",
        "2130706433",
        "127.1",
        "0x7f.1",
        "017700000001",
    ],
)
async def test_a_loopback_source_is_refused_before_any_connection(
    default_client: MioCreate, emulator: Emulator, internal: Service, host: str
) -> None:
    port = internal.url.rsplit(":", 1)[1]
    with pytest.raises(InvalidInputError, match="not a public address"):
        await default_client.upload(f"http://{host}:{port}/secret.jpg")
    assert internal.hits == []
    assert upload_url_requests(emulator) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/photo.jpg",
        "http://10.0.0.1/photo.jpg",
        "http://192.168.1.1/photo.jpg",
        "http://[fe80::1]/photo.jpg",
        "http://224.0.0.1/photo.jpg",
        "http://100.64.0.1/photo.jpg",
    ],
)
async def test_metadata_private_and_special_addresses_are_refused(
    default_client: MioCreate, emulator: Emulator, url: str
) -> None:
    with anyio.fail_after(5):  # refused at once, not after a connection attempt
        with pytest.raises(InvalidInputError, match="not a public address"):
            await default_client.upload(url)
    assert upload_url_requests(emulator) == 0


async def test_a_swap_with_a_loopback_url_spends_nothing(
    default_client: MioCreate, emulator: Emulator, internal: Service, tmp_path: Path
) -> None:
    photo = write_sample_photo(tmp_path / "photo.jpg")
    with pytest.raises(InvalidInputError, match="not a public address"):
        await default_client.swap_image(photo, face=f"{internal.url}/face.jpg")
    assert internal.hits == []
    assert upload_url_requests(emulator) == 0  # the photo was not uploaded either


async def test_a_redirect_to_a_refused_address_is_not_followed(
    trusting: MioCreate, emulator: Emulator, allowed: Service, internal: Service
) -> None:
    allowed.routes["/photo.jpg"] = lambda _: redirect(f"{internal.url}/secret.jpg")
    with pytest.raises(InvalidInputError, match="not a public address"):
        await trusting.upload(f"{allowed.url}/photo.jpg")
    assert allowed.hits == ["/photo.jpg"]
    assert internal.hits == []
    assert upload_url_requests(emulator) == 0


async def test_a_name_resolving_to_a_refused_address_is_refused(
    trusting: MioCreate, internal: Service
) -> None:
    port = internal.url.rsplit(":", 1)[1]
    with pytest.raises(InvalidInputError, match="resolves to"):
        await trusting.upload(f"http://localhost:{port}/secret.jpg")
    assert internal.hits == []


async def test_redirects_within_the_allowed_sources_are_followed_a_few_times(
    trusting: MioCreate, emulator: Emulator, allowed: Service
) -> None:
    allowed.routes["/moved.jpg"] = lambda _: redirect("/photo.jpg", 301)
    key = await trusting.upload(f"{allowed.url}/moved.jpg")
    assert key.endswith(".jpg")
    allowed.routes["/loop.jpg"] = lambda _: redirect("/loop.jpg")
    with pytest.raises(SourceNotFoundError, match="redirects more than"):
        await trusting.upload(f"{allowed.url}/loop.jpg")
    assert len([hit for hit in allowed.hits if hit == "/loop.jpg"]) <= 6


async def test_a_source_that_drips_its_bytes_fails_within_its_deadline(
    trusting: MioCreate, emulator: Emulator, allowed: Service
) -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(JPEG))})
        await response.prepare(request)
        await response.write(JPEG[:64])  # enough for the format check
        for offset in range(64, len(JPEG)):
            await asyncio.sleep(0.5)
            await response.write(JPEG[offset : offset + 1])
        return response

    allowed.routes["/drip.jpg"] = drip
    started = anyio.current_time()
    with anyio.fail_after(15), pytest.raises(SourceTooSlowError, match="in time"):
        await trusting.upload(f"{allowed.url}/drip.jpg")
    assert anyio.current_time() - started < 10


async def test_the_opt_in_reads_from_the_listed_network(
    emulator: Emulator, internal: Service
) -> None:
    config = Config(base_url=emulator.url, url_sources=["127.0.0.0/8"])
    async with MioCreate(emulator.client_id, emulator.client_secret, config=config) as mc:
        key = await mc.upload(f"{internal.url}/photo.jpg")
    assert internal.hits == ["/photo.jpg", "/photo.jpg"]  # checked, then streamed
    assert key.endswith(".jpg")


async def test_the_environment_can_opt_in(emulator: Emulator, internal: Service) -> None:
    config = Config.from_env({"MIOCREATE_URL_SOURCES": "any"}, base_url=emulator.url)
    async with MioCreate(emulator.client_id, emulator.client_secret, config=config) as mc:
        await mc.upload(f"{internal.url}/photo.jpg")
    assert internal.hits


async def test_the_emulators_client_reads_its_own_storage(
    emulator: Emulator, sample_photo: Path
) -> None:
    async with emulator.client() as mc:
        url = await mc.get_access_url(await mc.upload(sample_photo))
        assert await mc.upload(url)
