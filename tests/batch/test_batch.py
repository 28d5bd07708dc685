"""swap_many against the emulator: every job once, completion order, leaving early, faults; and
against a fake service: one bad job never sinks the batch, refusals never storm, honest
at-most-once, errors never shared, the caller's own exceptions propagate as themselves."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from aiohttp import web
from fake_service import FakeService, envelope, image_result, signed_query

from miocreate_async import (
    ConfigurationError,
    ImageSwapResult,
    InsufficientCreditsError,
    InvalidInputError,
    Key,
    MioCreate,
    MioCreateError,
    Operation,
    PollPolicy,
    ProtocolError,
    RetryPolicy,
    SourceNotFoundError,
    StreamSource,
    SubmissionUncertainError,
    SwapJob,
    SwapOutcome,
    SwapResults,
    TaskFailedError,
    TaskTimeoutError,
    UnsupportedFormatError,
    VideoSwapResult,
)
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

BACKENDS: list[Any] = [pytest.param("asyncio", id="asyncio")]
try:
    import uvloop  # noqa: F401
except ImportError:  # pragma: no cover - uvloop is not on every platform
    pass
else:
    BACKENDS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"))

#: Polls for tiny latencies: first after 20 ms, then every 20-100 ms.
FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1)
#: Retries without long waits.
QUICK_RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
#: Two keys: a job that needs no upload.
KEYS = SwapJob(image=Key("u/a.jpg"), face=Key("u/b.jpg"))


@asynccontextmanager
async def running(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Emulator, MioCreate]]:
    settings.setdefault("seed", 1)
    async with Emulator(data_dir=tmp_path / "emulator", **settings) as emulator:
        client = emulator.client(retry=QUICK_RETRY)
        async with client:
            yield emulator, client


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return [write_sample_photo(tmp_path / f"photo{i}.jpg", seed=i) for i in range(8)]


async def collect(results: SwapResults) -> list[tuple[SwapOutcome, float]]:
    """Outcomes with the (emulator clock) time each was handed out."""
    return [(outcome, time.time()) async for outcome in results]


def batch_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the batch machinery still alive in this loop."""
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and ("_batch" in task.get_name() or "_poller" in task.get_name())
    ]


def creations(emulator: Emulator) -> list[dict[str, Any]]:
    requests = emulator.ledger["requests"]
    return [r for r in requests if r["operation"] in ("image_swap", "video_swap")]


def overtaken_in_job_order(
    seen: list[tuple[SwapOutcome, float]], ends: dict[int, float]
) -> tuple[int, int]:
    """Of the pairs where a later job's task ended more than a fast poll's gap plus a loaded
    machine's delay (0.3 s) before an earlier job's: how many were still handed out in job
    order, and how many such pairs there are."""
    # (job index, end time, position handed out), in job order
    rows = sorted(
        (outcome.index, ends[outcome.task_id], position)
        for position, (outcome, _) in enumerate(seen)
        if outcome.task_id is not None
    )
    in_job_order = pairs = 0
    for i, (_, earlier_end, earlier_position) in enumerate(rows):
        for _, later_end, later_position in rows[i + 1 :]:
            if later_end < earlier_end - 0.3:
                pairs += 1
                in_job_order += earlier_position < later_position
    return in_job_order, pairs


async def drain(client: MioCreate, jobs: Any, **options: Any) -> list[SwapOutcome]:
    """Every outcome of a batch, in job order."""
    async with client.swap_many(jobs, **options) as results:
        outcomes = [outcome async for outcome in results]
    return sorted(outcomes, key=lambda outcome: outcome.index)


# --- every job once, in completion order ------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_500_jobs_yield_once_in_completion_order(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    async with running(tmp_path, latency="0.05-0.6") as (emulator, client):
        jobs = [SwapJob(image=photos[i % len(photos)], face=sample_face) for i in range(500)]
        async with client.swap_many(jobs, concurrency=50, poll=FAST) as results:
            seen = await collect(results)
        ledger = emulator.ledger

    assert sorted(outcome.index for outcome, _ in seen) == list(range(500))
    errors = [outcome.error for outcome, _ in seen if outcome.error is not None]
    assert errors == []
    assert all(isinstance(outcome.result, ImageSwapResult) for outcome, _ in seen)
    assert all(outcome.job is jobs[outcome.index] for outcome, _ in seen)
    ends = {task["id"]: task["ends_at"] for task in ledger["tasks"]}
    assert len(ends) == 500
    assert {outcome.task_id for outcome, _ in seen} == set(ends)
    for outcome, handed_out in seen:
        assert outcome.task_id is not None
        assert handed_out >= ends[outcome.task_id]  # never before the server says it ended
    # Completion order, up to the poll schedule's granularity: where a later job's task ended
    # well before an earlier job's, the later one came out first (a batch yielding in job
    # order would hand out every such pair the wrong way round).
    wrong, pairs = overtaken_in_job_order(seen, ends)
    assert pairs > 0
    assert wrong <= 0.1 * pairs, (wrong, pairs)
    assert results.pending_tasks() == {}
    assert results.stats.outcomes_yielded == 500


async def test_async_iterable_is_read_lazily(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[SwapJob]:
        nonlocal pulled
        while True:
            pulled += 1
            yield SwapJob(image=photos[0], face=sample_face)

    async with (
        running(tmp_path, latency=0.05) as (_, client),
        client.swap_many(endless(), concurrency=4, poll=FAST) as results,
    ):
        async for _ in results:
            break
    assert pulled <= 4 + 2  # the workers' jobs and one waiting in the feeder


async def test_a_generator_works_too(tmp_path: Path, photos: list[Path], sample_face: Path) -> None:
    def jobs() -> Iterator[SwapJob]:
        for photo in photos[:3]:
            yield SwapJob(image=photo, face=sample_face, kind="image")

    async with running(tmp_path, latency=0.02) as (_, client):
        outcomes = await drain(client, jobs(), poll=FAST)
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert all(o.ok for o in outcomes)


# --- leaving early ----------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_break_cancels_everything_and_reports_created_tasks(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    async with running(tmp_path, latency="0.2-0.6") as (emulator, client):
        jobs = [SwapJob(image=photos[i % len(photos)], face=sample_face) for i in range(200)]
        got = 0
        async with client.swap_many(jobs, concurrency=40, poll=FAST) as results:
            async for _ in results:
                got += 1
                if got == 3:
                    break
        assert batch_tasks() == []
        # Requests written before the break may still be read by the server a little later
        # (more so on a loaded machine): once those are in, nothing more comes.
        await anyio.sleep(0.3)
        settled = len(emulator.ledger["requests"])
        await anyio.sleep(0.5)  # the poller would have polled several times by now
        assert len(emulator.ledger["requests"]) == settled

        created = results.created_task_ids()
        on_server = {task["id"] for task in emulator.ledger["tasks"]}
        assert set(created) <= on_server
        assert len(on_server - set(created)) <= len(results.uncertain_jobs())
        pending = results.pending_tasks()
        assert len(pending) == len(created) - 3
        # The caller's client still works: collect one left behind.
        task_id = next(iter(pending))
        assert isinstance(await client.wait(task_id, timeout=5), ImageSwapResult)
        with pytest.raises(RuntimeError, match="ended"):
            await results.__anext__()


async def test_an_exception_in_the_loop_propagates_as_itself(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    async with running(tmp_path, latency="0.1-0.3") as (_, client):
        jobs = [SwapJob(image=photo, face=sample_face) for photo in photos]
        results = client.swap_many(jobs, concurrency=8, poll=FAST)

        async def fail_in_the_loop() -> None:
            async with results:
                async for _ in results:
                    raise KeyError("mine")

        with pytest.raises(KeyError, match="mine"):
            await fail_in_the_loop()
        assert batch_tasks() == []
        assert len(results.pending_tasks()) >= 1


async def test_cancellation_from_outside(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    async with running(tmp_path, latency=5) as (emulator, client):
        jobs = [SwapJob(image=photo, face=sample_face) for photo in photos]
        with anyio.move_on_after(0.5) as scope:
            async with client.swap_many(jobs, concurrency=8, poll=FAST) as results:
                async for _ in results:
                    pytest.fail("no task ends within the test")
        assert scope.cancelled_caught
        assert batch_tasks() == []
        assert set(results.pending_tasks()) == set(results.created_task_ids())
        assert len(results.created_task_ids()) + len(results.uncertain_jobs()) >= len(
            emulator.ledger["tasks"]
        )


# --- failures are outcomes --------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_faults_never_create_a_swap_twice(tmp_path: Path, sample_face: Path) -> None:
    photos = [write_sample_photo(tmp_path / f"p{i}.jpg", seed=100 + i) for i in range(60)]
    async with running(tmp_path, latency="0.02-0.1", fail_rate=0.1, cut_rate=0.05, seed=7) as (
        emulator,
        client,
    ):
        emulator.scenario("image_swap", code=802, count=25)
        emulator.scenario("image_swap", fault="cut_after", count=3)
        emulator.scenario("task_detail", code=500, count=20)
        jobs = [SwapJob(image=photo, face=sample_face) for photo in photos]
        async with client.swap_many(jobs, concurrency=20, poll=FAST, timeout=20) as results:
            outcomes = [outcome async for outcome in results]
        ledger = emulator.ledger

    assert sorted(o.index for o in outcomes) == list(range(60))
    bodies = Counter(
        (task["request"]["main_key"], task["request"]["target_key"]) for task in ledger["tasks"]
    )
    assert max(bodies.values()) == 1  # no image swapped twice
    kinds = Counter(type(o.error).__name__ for o in outcomes)
    assert kinds["SubmissionUncertainError"] >= 3
    assert any(r["code"] == 802 for r in ledger["requests"])
    for outcome in outcomes:
        assert (outcome.result is None) != (outcome.error is None)
        if isinstance(outcome.error, SubmissionUncertainError):
            assert outcome.task_id is None


async def test_quota_refusals_are_retried_past_the_session_attempts(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    async with running(tmp_path, latency=0.02) as (emulator, client):
        emulator.scenario("image_swap", code=802, count=8)  # more than QUICK_RETRY.attempts
        (outcome,) = await drain(client, [SwapJob(photos[0], sample_face)], poll=FAST)
        assert outcome.ok, outcome.error
        assert len(emulator.ledger["tasks"]) == 1
        assert sum(r["code"] == 802 for r in creations(emulator)) == 8


async def test_801_stops_submissions(tmp_path: Path, photos: list[Path], sample_face: Path) -> None:
    async with running(tmp_path, latency=0.05, credits=5) as (emulator, client):
        jobs = [SwapJob(image=photos[i % len(photos)], face=sample_face) for i in range(40)]
        async with client.swap_many(jobs, concurrency=4, max_submissions=2, poll=FAST) as results:
            outcomes = [o async for o in results]
        refused = [r for r in creations(emulator) if r["code"] == 801]

    assert len(outcomes) == 40
    assert sum(o.ok for o in outcomes) == 5
    failed = [o for o in outcomes if not o.ok]
    assert all(isinstance(o.error, InsufficientCreditsError) for o in failed)
    assert all(o.task_id is None for o in failed)
    # Only the requests already out when the first 801 came back met another one.
    assert 1 <= len(refused) <= 2
    assert len(creations(emulator)) <= 5 + 2


async def test_task_failure_is_an_outcome_or_raised_with_fail_fast(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    async with running(tmp_path, latency=0.02) as (emulator, client):
        emulator.scenario("image_swap", task_fail={"code": 602, "message": "No face detected"})
        jobs = [SwapJob(image=photo, face=sample_face) for photo in photos[:4]]
        outcomes = await drain(client, jobs, concurrency=1, poll=FAST)
        (failed,) = [o for o in outcomes if not o.ok]
        assert isinstance(failed.error, TaskFailedError)
        assert failed.error.code == 602
        assert failed.task_id == failed.error.task_id is not None
        with pytest.raises(TaskFailedError):
            failed.unwrap()

        emulator.scenario("image_swap", task_fail={"code": 602, "message": "No face detected"})
        with pytest.raises(TaskFailedError, match="No face"):
            await drain(client, jobs, concurrency=1, poll=FAST, fail_fast=True)


async def test_bad_inputs_are_outcomes(
    tmp_path: Path, photos: list[Path], sample_face: Path, sample_video: Path
) -> None:
    jobs = [
        SwapJob(image=tmp_path / "missing.jpg", face=sample_face),
        SwapJob(image=photos[0], face=sample_video),  # a face must be an image
        SwapJob(image=photos[0], face=sample_face, kind="video"),  # not a video
        SwapJob(image=Key("folder/no-extension"), face=sample_face),  # image or video?
    ]
    async with running(tmp_path, latency=0.02) as (emulator, client):
        outcomes = await drain(client, jobs, poll=FAST)
        assert emulator.ledger["tasks"] == []
    errors = [type(o.error) for o in outcomes]
    assert errors == [
        SourceNotFoundError,
        UnsupportedFormatError,
        UnsupportedFormatError,
        InvalidInputError,
    ]


async def test_something_else_than_a_job_raises_from_the_iterator(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    async with running(tmp_path, latency=0.02) as (_, client):
        jobs: list[Any] = [SwapJob(photos[0], sample_face), (photos[1], sample_face)]
        with pytest.raises(TypeError, match="SwapJob"):
            await drain(client, jobs, poll=FAST)


async def test_deadline_per_job(tmp_path: Path, photos: list[Path], sample_face: Path) -> None:
    async with running(tmp_path, latency=5) as (_, client):
        (outcome,) = await drain(client, [SwapJob(photos[0], sample_face)], timeout=0.3, poll=FAST)
    assert isinstance(outcome.error, TaskTimeoutError)
    assert outcome.task_id is not None
    assert outcome.error.task_id == outcome.task_id


# --- uploads ------------------------------------------------------------------------------------


async def test_shared_face_is_uploaded_once(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    face_bytes = sample_face.read_bytes()
    jobs = [SwapJob(image=photos[i % 3], face=sample_face) for i in range(30)]
    jobs += [SwapJob(image=photos[3], face=face_bytes) for _ in range(10)]
    async with running(tmp_path, latency=0.02) as (emulator, client):
        async with client.swap_many(jobs, concurrency=20, poll=FAST) as results:
            outcomes = [o async for o in results]
        uploads = emulator.ledger["uploads"]
    assert all(o.ok for o in outcomes)
    # 4 images, the face by path and the face as bytes: each once.
    assert len([u for u in uploads if u["status"] == "stored"]) == 6
    assert results.stats.uploads == 6


async def test_video_jobs_tell_by_content(
    tmp_path: Path, photos: list[Path], sample_face: Path, sample_video: Path
) -> None:
    jobs = [SwapJob(sample_video, sample_face), SwapJob(photos[0], sample_face)]
    async with running(tmp_path, latency=0.02) as (emulator, client):
        outcomes = await drain(client, jobs, poll=FAST)
        kinds = sorted(task["kind"] for task in emulator.ledger["tasks"])
    assert isinstance(outcomes[0].result, VideoSwapResult)
    assert isinstance(outcomes[1].result, ImageSwapResult)
    assert kinds == ["image_swap", "video_swap"]


# --- the API's small print ----------------------------------------------------------------------


async def test_results_are_entered_once_and_iterated_inside(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    results = client.swap_many([SwapJob(sample_photo, sample_face)], poll=FAST)
    with pytest.raises(RuntimeError, match="inside"):
        await results.__anext__()
    async with results:
        assert [o.ok async for o in results] == [True]
        with pytest.raises(StopAsyncIteration):
            await results.__anext__()
    with pytest.raises(RuntimeError, match="once"):
        async with results:
            pass


def test_swap_job_is_frozen_and_checks_its_kind() -> None:
    job = SwapJob(image="a.jpg", face="me.jpg")
    assert (job.hd, job.kind) == (False, None)
    with pytest.raises(AttributeError):
        job.hd = True  # type: ignore[misc]
    with pytest.raises(ValueError, match="kind"):
        SwapJob(image="a.jpg", face="me.jpg", kind="gif")  # type: ignore[arg-type]


def test_poll_policy_gaps() -> None:
    policy = PollPolicy(minimum=0.1, ratio=0.2, maximum=2.0, settle=1.5)
    assert policy.gap(0.0) == 0.1
    assert policy.gap(5.0) == pytest.approx(1.0)
    assert policy.gap(100.0) == 2.0  # the cap, below two settles
    assert PollPolicy(ratio=0.5, settle=0.5).gap(100.0) == 1.0  # two settles, below the cap
    with pytest.raises(ConfigurationError, match="minimum"):
        PollPolicy(minimum=0)


async def test_the_poller_learns_how_long_tasks_take(
    tmp_path: Path, photos: list[Path], sample_face: Path
) -> None:
    jobs = [SwapJob(image=photos[i % len(photos)], face=sample_face) for i in range(48)]
    polls = {}
    async with running(tmp_path, latency=0.25) as (_, client):
        for adaptive in (False, True):
            policy = attrs.evolve(FAST, adaptive=adaptive, learn_after=4)
            async with client.swap_many(jobs, concurrency=8, poll=policy) as results:
                assert all([o.ok async for o in results])
            polls[adaptive] = results.stats.polls / len(jobs)
    # Unlearnt, a 250 ms task is polled about nine times; learnt, about three times (more on
    # a loaded machine, where polls are answered late).
    assert polls[True] < polls[False] * 0.7


# --- against a fake service: broken servers and hostile replies -------------------------------


async def outcomes_of(mc: MioCreate, jobs: Any, **options: Any) -> list[SwapOutcome]:
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


# --- one bad job never sinks the batch ----------------------------------------------------------


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
        outcomes = await outcomes_of(mc, jobs)
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
        outcomes = await outcomes_of(mc, [KEYS] * 4, concurrency=1)
    assert len(outcomes) == 4
    failed = [outcome for outcome in outcomes if not outcome.ok]
    assert all(isinstance(outcome.error, MioCreateError) for outcome in failed)
    assert [outcome.task_id for outcome in failed] == [3]


# --- task ids of any size -----------------------------------------------------------------------


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


# --- a garbled creation reply is uncertain, and honest about it ----------------------------------


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


# --- Retry-After 0 never turns into a request storm ---------------------------------------------


async def test_retry_after_zero_makes_no_storm(fake: FakeService) -> None:
    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=429, headers={"Retry-After": "0"}, text="slow down")

    fake.api(Operation.IMAGE_SWAP, refuse)
    async with fake.client(retry=RetryPolicy()) as mc:
        with anyio.fail_after(30):
            outcomes = await outcomes_of(mc, [KEYS] * 16, timeout=2)
    assert all(isinstance(outcome.error, MioCreateError) for outcome in outcomes)
    assert fake.hits[fake.path(Operation.IMAGE_SWAP)] < 250


# --- a job's deadline bounds its creation retries -----------------------------------------------


async def test_job_deadline_bounds_creation_retries(fake: FakeService) -> None:
    async def quota(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(
            {"code": 802, "message": "quota", "data": None}, headers={"Retry-After": "3"}
        )

    fake.api(Operation.IMAGE_SWAP, quota)
    async with fake.client(retry=RetryPolicy()) as mc:
        with anyio.fail_after(6):
            (outcome,) = await outcomes_of(mc, [KEYS], timeout=1)
    assert isinstance(outcome.error, MioCreateError)
    assert fake.hits[fake.path(Operation.IMAGE_SWAP)] == 1


# --- options validated at once ------------------------------------------------------------------


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


# --- errors are never shared between jobs -------------------------------------------------------


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


# --- the caller's SystemExit and KeyboardInterrupt propagate as themselves ----------------------


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


@pytest.mark.processes
@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "SystemExit"])
def test_base_exceptions_in_the_loop_propagate_as_themselves(raised: str) -> None:
    # In a process of its own: an escaped KeyboardInterrupt or SystemExit would stop this run.
    import subprocess
    import sys

    script = BASE_EXCEPTION.replace("{raised}", raised)
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert f"propagated: {raised} client open: True" in done.stdout, done.stdout + done.stderr


# --- token expiry every few seconds plus faults: no AuthenticationError ------------------------


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
        outcomes = await outcomes_of(mc, jobs, concurrency=20)
    assert len(outcomes) == 40
    assert not [o for o in outcomes if isinstance(o.error, AuthenticationError)], outcomes
