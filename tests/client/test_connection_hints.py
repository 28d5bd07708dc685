"""Errors that say what to do: a base URL that is not the API's names it and says so; a failure
no retry can fix (nothing listening, https to a plain-HTTP port, an unknown host) is raised at
once with the URL and the likely fix, and a refusal after the API has answered (a restart) is
still retried."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from miocreate_async import (
    Config,
    ConnectError,
    HTTPStatusError,
    MioCreate,
    ProtocolError,
    RetryPolicy,
    ServiceUnreachableError,
    SwapJob,
)
from miocreate_async.emulator import Emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

#: A retry would wait a minute first: each test's deadline catches one.
SLOW_RETRIES = RetryPolicy(attempts=5, initial=60.0, jitter=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def website() -> AsyncIterator[str]:
    """A web server that is not the API: HTML pages, 404 for the API's paths."""

    async def page(request: web.Request) -> web.Response:
        status = 200 if request.path == "/" else 404
        return web.Response(status=status, text="<html>a website</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_a_base_url_that_is_not_the_api_is_named(website: str) -> None:
    async with MioCreate(token="t", base_url=website, retry=SLOW_RETRIES) as client:
        with anyio.fail_after(10), pytest.raises(HTTPStatusError) as raised:
            await client.get_task(123)
    message = str(raised.value)
    assert f"{website}/v1/task/detail" in message
    assert "not a MioCreate API" in message
    assert "base_url" in message
    # A site whose pages answer 200 HTML: the same verdict.
    config = Config(base_url=website, paths={"task_detail": "/"}, retry=SLOW_RETRIES)
    async with MioCreate(token="t", config=config) as client:
        with anyio.fail_after(10), pytest.raises(ProtocolError, match="not a MioCreate API"):
            await client.get_task(123)


@pytest.mark.parametrize(
    ("base_url", "says"),
    [
        (f"http://127.0.0.1:{free_port()}", "nothing is listening at http://127.0.0.1:"),
        ("http://api.miocreate.invalid", "cannot resolve the host of http://api.miocreate.invalid"),
    ],
    ids=["refused", "dns"],
)
async def test_unfixable_connection_failures_fail_at_once(
    base_url: str, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="miocreate_async")
    async with MioCreate("id", "secret", base_url=base_url, retry=SLOW_RETRIES) as client:
        with anyio.fail_after(20), pytest.raises(ConnectError) as raised:
            await client.get_upload_url("a.jpg")  # the token exchange fails first
        assert says in str(raised.value)
        assert "base_url" in str(raised.value)
        assert raised.value.permanent
        # A creation too: nothing was sent, so it is a ConnectError, never an uncertainty.
        with anyio.fail_after(20), pytest.raises(ConnectError):
            await client.create_image_swap("a/b.jpg", "a/c.jpg")
    assert "retrying" not in caplog.text


async def test_https_to_a_plain_http_port_says_use_http(emulator: Emulator) -> None:
    secure = emulator.url.replace("http://", "https://")
    async with MioCreate(
        emulator.client_id, emulator.client_secret, base_url=secure, retry=SLOW_RETRIES
    ) as client:
        with anyio.fail_after(20), pytest.raises(ConnectError) as raised:
            await client.get_upload_url("a.jpg")
    assert f"no TLS handshake with {secure}" in str(raised.value)
    assert "Use http://" in str(raised.value)
    assert emulator.ledger["requests"] == []


async def test_a_batch_against_nothing_listening_ends_with_the_hint(
    sample_photo: Path, sample_face: Path
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    async with MioCreate(token="t", base_url=base_url, retry=SLOW_RETRIES) as client:
        jobs = [SwapJob(sample_photo, sample_face) for _ in range(3)]
        with anyio.fail_after(30):
            async with client.swap_many(jobs, concurrency=3) as results:
                outcomes = [outcome async for outcome in results]
    assert len(outcomes) == 3
    # The first failure stops the batch: every job says why, and what to change.
    for outcome in outcomes:
        assert isinstance(outcome.error, ServiceUnreachableError)
        assert "nothing is listening at http://127.0.0.1:" in str(outcome.error)
        assert "base_url" in str(outcome.error)


async def test_a_refusal_after_the_api_answered_is_retried(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="miocreate_async")
    retry = RetryPolicy(attempts=3, initial=0.01, jitter=False)
    async with emulator.client(retry=retry) as client:
        await client.get_upload_url("a.jpg")
        await emulator.aclose()  # the service goes away (a restart, say)
        with anyio.fail_after(20), pytest.raises(ConnectError) as raised:
            await client.get_upload_url("a.jpg")
    assert not raised.value.permanent
    assert "retrying" in caplog.text
