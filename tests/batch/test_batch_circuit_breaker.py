"""``swap_many``'s circuit breaker: a batch against a service that is down does not spin
silently. Retries are announced (a WARNING at most every few seconds); after a run of consecutive
connection failures with no success, the batch stops submitting and ends the remaining jobs with
ServiceUnreachableError at once, while tasks already created are still waited for."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web

from miocreate_async import (
    ConnectError,
    MioCreate,
    RetryPolicy,
    ServiceUnreachableError,
    SubmissionUncertainError,
    SwapJob,
)
from miocreate_async.emulator import Emulator, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def photos(tmp_path: Path, count: int) -> list[Path]:
    return [write_sample_photo(tmp_path / f"p{index}.jpg", seed=index) for index in range(count)]


async def test_a_dead_service_ends_every_job_with_service_unreachable(
    tmp_path: Path, sample_face: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = [SwapJob(image=path, face=sample_face) for path in photos(tmp_path, 20)]
    caplog.set_level(logging.INFO, logger="miocreate_async")
    async with MioCreate(token="t", base_url=dead_url()) as client:
        # A deadline of an hour per job: without the breaker this would spin for hours.
        with anyio.fail_after(60):
            async with client.swap_many(jobs, concurrency=4, timeout=3600) as results:
                outcomes = [outcome async for outcome in results]
    assert len(outcomes) == 20
    assert all(isinstance(o.error, ServiceUnreachableError) for o in outcomes)
    assert all(isinstance(o.error, ConnectError) for o in outcomes)  # nothing was sent
    assert all(o.task_id is None for o in outcomes)
    # Nothing listening where the service never answered: no retry can help, none is made,
    # and every job's error says what to check.
    assert not [r for r in caplog.records if "retry" in r.getMessage().lower()]
    assert all("nothing is listening" in str(o.error) for o in outcomes)
    assert "unreachable" in str(outcomes[-1].error)


async def test_the_breaker_threshold_is_an_option(tmp_path: Path, sample_face: Path) -> None:
    jobs = [SwapJob(image=path, face=sample_face) for path in photos(tmp_path, 3)]
    async with MioCreate(token="t", base_url=dead_url(), retry=RetryPolicy(attempts=2)) as client:
        with anyio.fail_after(60):
            async with client.swap_many(jobs, concurrency=1, unreachable_after=1) as results:
                outcomes = [outcome async for outcome in results]
    # The first failure trips it: the other jobs are never tried.
    assert all(isinstance(o.error, ServiceUnreachableError) for o in outcomes)
    with pytest.raises(ValueError, match="unreachable_after"):
        client.swap_many(jobs, unreachable_after=0)


async def test_tasks_already_created_are_still_waited_for(
    emulator: Emulator, tmp_path: Path, sample_face: Path
) -> None:
    """The service goes away once two tasks exist, and comes back after the breaker tripped:
    the two tasks are still collected; the other jobs end ServiceUnreachableError."""
    proxy = _Proxy(emulator.url)
    async with aiohttp.ClientSession() as http:
        proxy.http = http
        await proxy.start()
        jobs = [SwapJob(image=p, face=sample_face) for p in photos(tmp_path, 6)]
        client = MioCreate(
            emulator.client_id,
            emulator.client_secret,
            base_url=proxy.url,
            retry=RetryPolicy(attempts=2),
        )
        try:
            async with (
                client,
                client.swap_many(
                    jobs, concurrency=4, max_submissions=1, unreachable_after=2
                ) as results,
            ):
                outcomes = []
                with anyio.fail_after(60):
                    async for outcome in results:
                        outcomes.append(outcome)
                        if isinstance(outcome.error, ServiceUnreachableError) and not proxy.up:
                            await proxy.start()  # back, for the polls of the created tasks
        finally:
            await proxy.stop()
    assert len(outcomes) == 6
    assert sum(o.ok for o in outcomes) == 2, [repr(o.error) for o in outcomes]
    failed = [o.error for o in outcomes if not o.ok]
    assert any(isinstance(error, ServiceUnreachableError) for error in failed)
    # (A request cut by the outage is uncertain, never re-sent: that is the other ending.)
    assert all(
        isinstance(error, (ServiceUnreachableError, SubmissionUncertainError)) for error in failed
    )


class _Proxy:
    """Forwards API requests to the emulator; goes down (refusing connections) once two
    tasks were created, and up again when told."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.http: aiohttp.ClientSession | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.created = 0
        self.stopping: asyncio.Future[None] | None = None

    @property
    def up(self) -> bool:
        return self.runner is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            runner, self.runner = self.runner, None
            await runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self.http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with self.http.request(
            request.method,
            self.target + request.path_qs,
            data=await request.read(),
            headers=headers,
        ) as reply:
            body = await reply.read()
            status, content_type = reply.status, reply.content_type
        if request.path.startswith("/v1/task/face-swap") and status == 200:
            self.created += 1
            if self.created == 2:
                # Down after this reply: every later connection is refused.
                self.stopping = asyncio.ensure_future(self.stop())
        # One request per connection: once down, every request meets a refused connection.
        headers = {"Connection": "close"}
        return web.Response(body=body, status=status, content_type=content_type, headers=headers)
