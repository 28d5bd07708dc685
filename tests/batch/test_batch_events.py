"""``swap_many``'s events hook, its options, and ``SwapJob.media`` with its ``image`` alias."""

from __future__ import annotations

import inspect
from pathlib import Path

import attrs
import pytest

from miocreate_async import (
    BatchEvent,
    InvalidInputError,
    JobDone,
    Key,
    MioCreate,
    SwapJob,
    SwapOutcome,
    TaskCreated,
    TaskPolled,
    TaskStatus,
    UploadProgress,
)
from miocreate_async._batch import SwapOptions

pytestmark = pytest.mark.anyio


async def test_events_report_uploads_tasks_polls_and_ends(
    client: MioCreate, sample_photo: Path, sample_face: Path, sample_video: Path
) -> None:
    jobs = [
        SwapJob(media=sample_photo, face=sample_face),
        SwapJob(media=sample_video, face=sample_face),
    ]
    events: list[BatchEvent] = []
    async with client.swap_many(jobs, events=events.append) as results:
        outcomes = [outcome async for outcome in results]
    assert all(outcome.ok for outcome in outcomes)

    uploads = [e for e in events if isinstance(e, UploadProgress)]
    # Three distinct files, the shared face once: each ends with all its bytes sent.
    finished = {e.file_name: e.done for e in uploads if e.done == e.total}
    assert finished == {
        "photo.jpg": sample_photo.stat().st_size,
        "clip.mp4": sample_video.stat().st_size,
        "face.png": sample_face.stat().st_size,
    }
    created = {e.index: e.task_id for e in events if isinstance(e, TaskCreated)}
    assert created == {outcome.index: outcome.task_id for outcome in outcomes}
    polled = [e for e in events if isinstance(e, TaskPolled)]
    assert {e.task_id for e in polled} == set(created.values())
    last = {e.task_id: e.status for e in polled}  # the last reading of each task
    assert set(last.values()) == {TaskStatus.SUCCEEDED}
    done = [e.outcome for e in events if isinstance(e, JobDone)]
    assert sorted(o.index for o in done) == [0, 1]
    # Each job's events come in order: created, polled, done.
    for index, task_id in created.items():
        mine = [
            type(e).__name__
            for e in events
            if (isinstance(e, (TaskCreated, TaskPolled)) and e.task_id == task_id)
            or (isinstance(e, JobDone) and e.outcome.index == index)
        ]
        assert mine[0] == "TaskCreated"
        assert mine[-1] == "JobDone"
        assert "TaskPolled" in mine


def test_swap_job_media_and_its_image_alias() -> None:
    by_media = SwapJob(media="a.jpg", face="me.jpg")
    by_image = SwapJob(image="a.jpg", face="me.jpg")
    positional = SwapJob("a.jpg", "me.jpg", True, "image")
    assert by_media == by_image
    assert by_image.media == by_image.image == "a.jpg"
    assert (positional.media, positional.hd, positional.kind) == ("a.jpg", True, "image")
    assert attrs.evolve(by_media, hd=True).media == "a.jpg"
    with pytest.raises(TypeError, match="once"):
        SwapJob(media="a.jpg", image="b.jpg", face="me.jpg")
    with pytest.raises(TypeError, match="once"):
        SwapJob(face="me.jpg")
    with pytest.raises(TypeError, match="face"):
        SwapJob(media="a.jpg")


def test_the_options_are_defined_once() -> None:
    """``MioCreate.swap_many``'s defaults are those of the one options class it builds."""
    parameters = inspect.signature(MioCreate.swap_many).parameters
    for field in attrs.fields(SwapOptions):
        assert parameters[field.name].default == field.default, field.name
    assert set(parameters) - {"self", "jobs"} == {f.name for f in attrs.fields(SwapOptions)}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"max_submissions": 0}, "max_submissions"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"upload_cache_size": -1}, "upload_cache_size"),
    ],
)
async def test_bad_options_are_refused_at_the_call(
    client: MioCreate, options: dict[str, float], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        client.swap_many([], **options)  # type: ignore[arg-type]


async def test_upload_returns_a_key(client: MioCreate, sample_face: Path) -> None:
    key = await client.upload(sample_face)
    assert isinstance(key, Key)


# --- reprs abbreviate bytes ---------------------------------------------------------------------


def test_swap_job_and_outcome_reprs_abbreviate_bytes() -> None:
    from miocreate_async import SwapJob, SwapOutcome

    data = b"\xff\xd8\xff" + b"x" * (5 << 20)
    job = SwapJob(image=data, face=bytearray(data))
    assert len(repr(job)) < 500
    assert str(len(data)) in repr(job)
    outcome = SwapOutcome(job=job, index=3)
    assert len(repr(outcome)) < 1000


# --- hd is a bool -------------------------------------------------------------------------------


@pytest.mark.parametrize("hd", ["no", "yes", 1, 0, None, 2.0])
def test_swap_job_refuses_non_bool_hd(hd: object) -> None:
    from miocreate_async import SwapJob

    with pytest.raises(InvalidInputError):
        SwapJob(image=Key("a/b.jpg"), face=Key("a/c.jpg"), hd=hd)  # type: ignore[arg-type]


# --- outcomes of bytes jobs print short ---------------------------------------------------------


def test_outcome_repr_of_bytes_job() -> None:
    data = b"\xff\xd8\xff" + b"z" * (2 << 20)
    outcome = SwapOutcome(job=SwapJob(image=data, face=Key("u/f.jpg")), index=0)
    assert len(repr(outcome)) < 1000
