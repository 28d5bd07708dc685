"""``aclose()`` ends API calls in flight with ClientClosedError, wherever they wait, and leaves
the callers' tasks as they were: not cancelled afterwards, their own cancellations kept."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from aiohttp import web
from fake_service import JPEG, FakeService, envelope, serve_upload_url, storage_url

from miocreate_async import (
    ClientClosedError,
    Config,
    MioCreate,
    MioCreateTimeoutError,
    Operation,
    RetryPolicy,
    SubmissionUncertainError,
)

pytestmark = pytest.mark.anyio


def _hang(started: anyio.Event) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def hang(request: web.Request) -> web.Response:
        await request.read()
        started.set()
        await anyio.sleep(30)
        return envelope({"id": 1, "status": 1, "message": "", "additional_data": {}})

    return hang


def _not_cancelled() -> bool:
    task = asyncio.current_task()
    return sys.version_info < (3, 11) or (task is not None and task.cancelling() == 0)


async def _closed_while(
    mc: MioCreate, call: Callable[[], Awaitable[object]], started: anyio.Event, callers: int = 1
) -> list[BaseException]:
    """Run ``callers`` tasks making ``call``, close the client once the server saw one, and
    return what each caller got; each checks that its task is not left cancelled."""
    outcomes: list[BaseException] = []
    after: list[bool] = []
    all_done = anyio.Event()

    async def caller() -> None:
        try:
            await call()
        except Exception as exc:
            outcomes.append(exc)
        await anyio.lowlevel.checkpoint()  # a cancellation left pending would land here
        after.append(_not_cancelled())
        if len(after) == callers:
            all_done.set()

    async with anyio.create_task_group() as group:
        for _ in range(callers):
            group.start_soon(caller)
        with anyio.fail_after(10):
            await started.wait()
        await mc.aclose()
        with anyio.fail_after(2):
            await all_done.wait()
    assert after == [True] * callers
    return outcomes


async def test_aclose_ends_calls_waiting_for_their_replies(fake: FakeService) -> None:
    started = anyio.Event()
    fake.api(Operation.TASK_DETAIL, _hang(started))
    mc = fake.client()
    outcomes = await _closed_while(mc, lambda: mc.get_task(1), started, callers=3)
    assert [type(exc) for exc in outcomes] == [ClientClosedError] * 3


async def test_aclose_ends_calls_on_a_session_the_user_owns(fake: FakeService) -> None:
    started = anyio.Event()
    fake.api(Operation.TASK_DETAIL, _hang(started))
    async with aiohttp.ClientSession() as http:
        mc = MioCreate(token="t", config=Config(base_url=fake.url), session=http)
        outcomes = await _closed_while(mc, lambda: mc.get_task(1), started)
        assert [type(exc) for exc in outcomes] == [ClientClosedError]
        assert not http.closed  # borrowed: still the user's to close


async def test_aclose_ends_a_call_waiting_to_retry(fake: FakeService) -> None:
    started = anyio.Event()

    async def busy(request: web.Request) -> web.Response:
        await request.read()
        started.set()
        return web.Response(status=503)

    fake.api(Operation.TASK_DETAIL, busy)
    mc = fake.client(retry=RetryPolicy(attempts=5, initial=30, maximum=30, jitter=False))
    outcomes = await _closed_while(mc, lambda: mc.get_task(1), started)
    assert [type(exc) for exc in outcomes] == [ClientClosedError]
    assert fake.hits[fake.path(Operation.TASK_DETAIL)] == 1


async def test_aclose_ends_calls_waiting_for_a_token(fake: FakeService) -> None:
    started = anyio.Event()

    async def slow_token(request: web.Request) -> web.Response:
        await request.read()
        started.set()
        await anyio.sleep(30)
        return envelope({"access_token": "tok", "expires_in": 3600})

    fake.api(Operation.TOKEN, slow_token)
    mc = fake.client(token=None)
    outcomes = await _closed_while(mc, lambda: mc.get_task(1), started, callers=2)
    assert [type(exc) for exc in outcomes] == [ClientClosedError] * 2
    assert fake.hits[fake.path(Operation.TOKEN)] == 1


async def test_a_callers_own_timeout_is_not_taken_for_a_close(fake: FakeService) -> None:
    started = anyio.Event()
    fake.api(Operation.TASK_DETAIL, _hang(started))
    async with fake.client() as mc:
        with anyio.move_on_after(0.3) as scope:
            await mc.get_task(1)
        assert scope.cancelled_caught
        assert _not_cancelled()
        await anyio.lowlevel.checkpoint()


# --- the reply's deadline (Config.timeout) ------------------------------------------------------


async def test_a_reply_that_never_comes_times_out_each_try(fake: FakeService) -> None:
    started = anyio.Event()
    fake.api(Operation.TASK_DETAIL, _hang(started))
    async with fake.client(timeout=0.2) as mc:
        with anyio.fail_after(10), pytest.raises(MioCreateTimeoutError, match="no reply within"):
            await mc.get_task(1)
        assert _not_cancelled()
        await anyio.lowlevel.checkpoint()
    assert fake.hits[fake.path(Operation.TASK_DETAIL)] == 3  # QUICK_RETRY's three tries


async def test_a_reply_whose_body_stops_times_out(fake: FakeService) -> None:
    async def half(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b'{"code": 200, ')
        await anyio.sleep(30)
        return response

    fake.api(Operation.TASK_DETAIL, half)
    async with fake.client(timeout=0.2, retry=RetryPolicy(attempts=1)) as mc:
        with anyio.fail_after(10), pytest.raises(MioCreateTimeoutError):
            await mc.get_task(1)
        assert _not_cancelled()


async def test_a_creation_without_a_reply_is_uncertain_and_never_sent_again(
    fake: FakeService,
) -> None:
    started = anyio.Event()
    fake.api(Operation.IMAGE_SWAP, _hang(started))
    async with fake.client(timeout=0.2) as mc:
        with anyio.fail_after(10), pytest.raises(SubmissionUncertainError):
            await mc.create_image_swap("photos/a.jpg", "faces/b.jpg")
        assert _not_cancelled()
    assert fake.hits[fake.path(Operation.IMAGE_SWAP)] == 1


# --- transfers in flight end promptly too --------------------------------------------------------


async def test_aclose_ends_a_running_download(fake: FakeService, tmp_path: Path) -> None:
    started = anyio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(10 << 20)})
        await response.prepare(request)
        await response.write(b"x" * 4096)
        started.set()
        await anyio.sleep(30)
        return response

    fake.route("GET", "/storage/big.jpg", slow)
    mc = fake.client(stall_timeout=30)
    errors: list[BaseException] = []
    failed = anyio.Event()

    async def download() -> None:
        try:
            await mc.download(storage_url(fake, "big.jpg"), tmp_path / "out.jpg")
        except Exception as exc:
            errors.append(exc)
            failed.set()

    async with anyio.create_task_group() as group:
        group.start_soon(download)
        with anyio.fail_after(10):
            await started.wait()
        await mc.aclose()
        with anyio.fail_after(2):
            await failed.wait()
    assert isinstance(errors[0], ClientClosedError)
    assert not (tmp_path / "out.jpg").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


async def test_aclose_ends_a_running_upload(fake: FakeService) -> None:
    serve_upload_url(fake)
    started = anyio.Event()

    async def hang(request: web.Request) -> web.Response:
        await request.content.read(1024)
        started.set()
        await anyio.sleep(30)
        return web.Response()

    fake.route("PUT", "/storage/o.jpg", hang)
    mc = fake.client(stall_timeout=30)
    errors: list[BaseException] = []
    failed = anyio.Event()

    async def upload() -> None:
        try:
            await mc.upload(JPEG + b"\x00" * (4 << 20), file_name="a.jpg")
        except Exception as exc:
            errors.append(exc)
            failed.set()

    async with anyio.create_task_group() as group:
        group.start_soon(upload)
        with anyio.fail_after(10):
            await started.wait()
        await mc.aclose()
        with anyio.fail_after(2):
            await failed.wait()
    assert isinstance(errors[0], ClientClosedError), repr(errors[0])
    assert fake.hits["/storage/o.jpg"] == 1
