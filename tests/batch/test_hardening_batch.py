"""Issue 11, swap_many: one bad job never sinks the batch, refusals never storm, honest
at-most-once, errors never shared, the caller's own exceptions propagate as themselves."""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from fake_service import FakeService, envelope, image_result, signed_query

from miocreate_async import (
    ConfigurationError,
    ImageSwapResult,
    InvalidInputError,
    Key,
    MioCreate,
    MioCreateError,
    Operation,
    PollPolicy,
    ProtocolError,
    RetryPolicy,
    StreamSource,
    SubmissionUncertainError,
    SwapJob,
    SwapOutcome,
    TaskTimeoutError,
)
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = pytest.mark.anyio

FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1)
QUICK_RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
KEYS = SwapJob(image=Key("u/a.jpg"), face=Key("u/b.jpg"))


@pytest.fixture
async def fake() -> AsyncIterator[FakeService]:
    async with FakeService() as service:
        yield service


async def collect(mc: MioCreate, jobs: Any, **options: Any) -> list[SwapOutcome]:
    options.setdefault("poll", FAST)
    async with mc.swap_many(jobs, **options) as results:
        return [outcome async for outcome in results]


def serve_tasks(fake: FakeService, detail: Any) -> Iterator[int]:
    """Creation answers ids 1, 2, 3...; the detail of each is ``detail(id)``."""
    ids = itertools.count(1)

    async def create(request: web.Request) -> web.Response:
        await request.read()
        return envelope({"task_id": next(ids)})

    async def get(request: web.Request) -> web.Response:
        task_id = int((await request.json())["id"])
        return envelope(detail(task_id))

    fake.api(Operation.IMAGE_SWAP, create)
    fake.api(Operation.TASK_DETAIL, get)
    return ids


# --- item 1: one bad job never sinks the batch --------------------------------------------------


class _BrokenFile:
    """A binary file object whose reads fail like a dying disk."""

    name = "broken.jpg"

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 4096 if whence == 2 else offset

    def read(self, size: int = -1) -> bytes:
        raise OSError(5, "Input/output error")


async def test_one_bad_job_never_sinks_the_batch(tmp_path: Path) -> None:
    photo = write_sample_photo(tmp_path / "p.jpg")
    face = write_sample_face(tmp_path / "f.png")

    async def raising() -> AsyncIterator[bytes]:
        yield photo.read_bytes()[:100]
        raise RuntimeError("the producer broke")

    async def raising_os() -> AsyncIterator[bytes]:
        yield photo.read_bytes()[:100]
        raise OSError(5, "Input/output error")

    size = photo.stat().st_size
    jobs = [
        SwapJob(image=photo, face=face),
        SwapJob(image=StreamSource(raising(), size, "s.jpg"), face=face),
        SwapJob(image=str(tmp_path / "bad\0name.jpg"), face=face),
        SwapJob(image=StreamSource(raising_os(), size, "o.jpg"), face=face),
        SwapJob(image=_BrokenFile(), face=face),  # type: ignore[arg-type]
        SwapJob(image=photo, face=face, hd=True),
    ]
    emulator = Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emu")
    async with emulator, emulator.client(retry=QUICK_RETRY) as mc:
        outcomes = await collect(mc, jobs)
    by_index = {outcome.index: outcome for outcome in outcomes}
    assert sorted(by_index) == list(range(len(jobs)))
    assert by_index[0].ok
    assert by_index[5].ok
    for index in (1, 2, 3, 4):
        assert isinstance(by_index[index].error, MioCreateError), by_index[index]
    assert isinstance(getattr(by_index[1].error, "__cause__", None), RuntimeError)
    assert isinstance(by_index[2].error, InvalidInputError)


async def test_a_reply_that_breaks_one_poll_fails_only_that_task(fake: FakeService) -> None:
    def detail(task_id: int) -> dict[str, Any]:
        expires = "9" * 40 if task_id == 2 else "604800"
        url = f"{fake.url}/storage/r{task_id}.jpg?{signed_query('20260101T000000Z', expires)}"
        if task_id == 3:
            return {"id": task_id, "status": 0, "additional_data": "not a result"}
        return {"id": task_id, "status": 0, "additional_data": image_result(url)}

    serve_tasks(fake, detail)
    async with fake.client() as mc:
        outcomes = await collect(mc, [KEYS] * 4, concurrency=1)
    assert len(outcomes) == 4
    failed = [outcome for outcome in outcomes if not outcome.ok]
    assert all(isinstance(outcome.error, MioCreateError) for outcome in failed)
    assert [outcome.task_id for outcome in failed] == [3]


# --- item 8: task ids of any size ---------------------------------------------------------------


async def test_huge_task_ids_are_never_lost(fake: FakeService) -> None:
    huge = itertools.count(2**64 + 1)

    async def create(request: web.Request) -> web.Response:
        await request.read()
        return envelope({"task_id": next(huge)})

    async def get(request: web.Request) -> web.Response:
        task_id = (await request.json())["id"]
        return envelope({"id": task_id, "status": 1})

    fake.api(Operation.IMAGE_SWAP, create)
    fake.api(Operation.TASK_DETAIL, get)
    async with fake.client() as mc, mc.swap_many([KEYS] * 4, timeout=0.3, poll=FAST) as results:
        outcomes = [outcome async for outcome in results]
    assert all(isinstance(outcome.error, TaskTimeoutError) for outcome in outcomes)
    assert sorted(outcome.task_id or 0 for outcome in outcomes) == [2**64 + n for n in (1, 2, 3, 4)]
    assert sorted(results.created_task_ids()) == [2**64 + n for n in (1, 2, 3, 4)]


async def test_huge_ids_pending_after_leaving_early(fake: FakeService) -> None:
    huge = itertools.count(2**63 + 7)

    async def create(request: web.Request) -> web.Response:
        await request.read()
        return envelope({"task_id": next(huge)})

    async def get(request: web.Request) -> web.Response:
        task_id = (await request.json())["id"]
        return envelope(
            {
                "id": task_id,
                "status": 0 if task_id == 2**63 + 7 else 1,
                "additional_data": image_result(f"{fake.url}/r.jpg"),
            }
        )

    fake.api(Operation.IMAGE_SWAP, create)
    fake.api(Operation.TASK_DETAIL, get)
    mc = fake.client()
    async with mc, mc.swap_many([KEYS] * 5, max_submissions=1, poll=FAST) as results:
        async for _ in results:
            break
    assert len(results.created_task_ids()) + len(results.uncertain_jobs()) >= 1
    assert all(task_id > 2**63 for task_id in results.created_task_ids())


# --- item 4 and 28: a garbled creation reply is uncertain, and honest about it -------------------


async def test_garbled_creation_reply_is_an_uncertain_job(fake: FakeService) -> None:
    fake.raw(Operation.IMAGE_SWAP, b"<html>upstream said hello</html>")
    async with fake.client() as mc, mc.swap_many([KEYS], poll=FAST) as results:
        outcomes = [outcome async for outcome in results]
    (outcome,) = outcomes
    assert isinstance(outcome.error, SubmissionUncertainError)
    assert isinstance(outcome.error.__cause__, ProtocolError)
    assert results.uncertain_jobs() == [KEYS]
    assert fake.hits[fake.path(Operation.IMAGE_SWAP)] == 1


async def test_uncertain_is_honest_and_resubmitting_is_opt_in(tmp_path: Path) -> None:
    photo = write_sample_photo(tmp_path / "p.jpg")
    face = write_sample_face(tmp_path / "f.png")
    emulator = Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emu")
    async with emulator, emulator.client(retry=QUICK_RETRY) as mc:
        image, face_key = await mc.upload(photo), await mc.upload(face)
        job = SwapJob(image=Key(image), face=Key(face_key))
        emulator.scenario("image_swap", fault="cut_after")
        async with mc.swap_many([job], poll=FAST) as results:
            (outcome,) = [o async for o in results]
        assert isinstance(outcome.error, SubmissionUncertainError)
        assert "list" in outcome.error.message  # the API cannot list tasks
        assert results.uncertain_jobs() == [job]
        assert len(emulator.ledger["tasks"]) == 1

        emulator.scenario("image_swap", fault="cut_after")
        async with mc.swap_many([job], poll=FAST, resubmit_uncertain=True) as results:
            (outcome,) = [o async for o in results]
        assert isinstance(outcome.result, ImageSwapResult)
        assert len(emulator.ledger["tasks"]) == 3  # one more lost, one paid twice


# --- item 5: Retry-After 0 never turns into a request storm -------------------------------------


async def test_retry_after_zero_makes_no_storm(fake: FakeService) -> None:
    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=429, headers={"Retry-After": "0"}, text="slow down")

    fake.api(Operation.IMAGE_SWAP, refuse)
    async with fake.client(retry=RetryPolicy()) as mc:
        with anyio.fail_after(30):
            outcomes = await collect(mc, [KEYS] * 16, timeout=2)
    assert all(isinstance(outcome.error, MioCreateError) for outcome in outcomes)
    assert fake.hits[fake.path(Operation.IMAGE_SWAP)] < 250


# --- item 12: a job's deadline bounds its creation retries --------------------------------------


async def test_job_deadline_bounds_creation_retries(fake: FakeService) -> None:
    async def quota(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(
            {"code": 802, "message": "quota", "data": None}, headers={"Retry-After": "3"}
        )

    fake.api(Operation.IMAGE_SWAP, quota)
    async with fake.client(retry=RetryPolicy()) as mc:
        with anyio.fail_after(6):
            (outcome,) = await collect(mc, [KEYS], timeout=1)
    assert isinstance(outcome.error, MioCreateError)
    assert fake.hits[fake.path(Operation.IMAGE_SWAP)] == 1


# --- item 11: options validated at once ---------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": math.nan},
        {"timeout": -1},
        {"timeout": math.inf},
        {"concurrency": 1.5},
        {"concurrency": 0},
        {"concurrency": "4"},
        {"max_submissions": 0},
        {"max_submissions": 2.5},
        {"upload_cache_size": -1},
        {"poll": "fast"},
    ],
)
async def test_swap_many_options_are_checked_at_once(
    fake: FakeService, options: dict[str, Any]
) -> None:
    async with fake.client() as mc:
        with pytest.raises((InvalidInputError, ConfigurationError)):
            mc.swap_many([KEYS], **options)


# --- item 13: errors are never shared between jobs ----------------------------------------------


async def test_errors_are_never_shared_between_jobs(tmp_path: Path) -> None:
    photo = write_sample_photo(tmp_path / "p.jpg")
    face = write_sample_face(tmp_path / "f.png")
    emulator = Emulator(latency=10**6, seed=1, data_dir=tmp_path / "emu")
    async with emulator, emulator.client(retry=QUICK_RETRY) as mc:
        image, face_key = await mc.upload(photo), await mc.upload(face)
        jobs = [SwapJob(image=Key(image), face=Key(face_key))] * 20
        poll = PollPolicy(first=0.3, minimum=0.3, maximum=0.3, adaptive=False)
        async with mc.swap_many(jobs, poll=poll, concurrency=20) as results:
            with anyio.fail_after(20):
                while results.stats.tasks_created < 20:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            # Every token is now expired, and the key pair refused from here on.
            emulator.advance_clock(emulator.token_ttl + 1)
            emulator.scenario("token", code=401, count=10**6)
            outcomes = [outcome async for outcome in results]
    assert len(outcomes) == 20
    assert len({outcome.task_id for outcome in outcomes}) == 20
    for outcome in outcomes:
        assert outcome.error is not None
        assert outcome.error.task_id == outcome.task_id
    assert len({id(outcome.error) for outcome in outcomes}) == 20


# --- item 20: the caller's SystemExit and KeyboardInterrupt propagate as themselves -------------


BASE_EXCEPTION = """
import sys
import anyio
from miocreate_async import Key, SwapJob
from miocreate_async.emulator import Emulator

async def main() -> None:
    async with Emulator(latency=5) as emulator, emulator.client() as mc:
        jobs = [SwapJob(image=Key("u/a.jpg"), face=Key("u/b.jpg"))] * 3
        try:
            async with mc.swap_many(jobs) as results:
                async for _ in results:
                    raise {raised}
        except {raised}:
            print("propagated:", "{raised}", "client open:", not mc.closed)
        except BaseException as exc:
            print("propagated:", type(exc).__name__)

anyio.run(main)
"""


@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "SystemExit"])
def test_base_exceptions_in_the_loop_propagate_as_themselves(raised: str) -> None:
    # In a process of its own: an escaped KeyboardInterrupt or SystemExit would stop this run.
    import subprocess
    import sys

    script = BASE_EXCEPTION.replace("{raised}", raised)
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert f"propagated: {raised} client open: True" in done.stdout, done.stdout + done.stderr


# --- item 23 through a real batch: outcomes of bytes jobs print short ---------------------------


def test_outcome_repr_of_bytes_job() -> None:
    data = b"\xff\xd8\xff" + b"z" * (2 << 20)
    outcome = SwapOutcome(job=SwapJob(image=data, face=Key("u/f.jpg")), index=0)
    assert len(repr(outcome)) < 1000


# --- item 27: token expiry every few seconds plus faults: no AuthenticationError ---------------


async def test_short_lived_tokens_and_faults_never_fail_a_job_with_auth_errors(
    tmp_path: Path,
) -> None:
    from miocreate_async import AuthenticationError

    photo = write_sample_photo(tmp_path / "p.jpg")
    face = write_sample_face(tmp_path / "f.png")
    emulator = Emulator(
        latency=0.3, seed=7, data_dir=tmp_path / "emu", token_ttl=1, fail_rate=0.05, cut_rate=0.02
    )
    patient = RetryPolicy(attempts=8, initial=0.01, maximum=0.05)
    async with emulator, emulator.client(retry=patient) as mc:
        image, face_key = await mc.upload(photo), await mc.upload(face)
        jobs = [SwapJob(image=Key(image), face=Key(face_key))] * 40
        # Tokens expire while requests wait: a refresh is refused once more by a stale clock.
        emulator.scenario("task_detail", code=401, count=6)
        outcomes = await collect(mc, jobs, concurrency=20)
    assert len(outcomes) == 40
    assert not [o for o in outcomes if isinstance(o.error, AuthenticationError)], outcomes
