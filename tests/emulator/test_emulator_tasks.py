"""The task engine: status from the clock, true results, detection and multi swaps."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from conftest import RawApi
from PIL import Image

from miocreate_async import MioCreate
from miocreate_async._operations import Operation
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio


async def _fetch(api: RawApi, url: str) -> bytes:
    async with api.session.get(url) as reply:
        assert reply.status == 200
        assert int(reply.headers["Content-Length"]) > 0
        return await reply.read()


async def _swap(api: RawApi, photo: Path, face: Path) -> int:
    body = {"main_key": await api.upload(photo), "target_key": await api.upload(face), "is_hd": 2}
    return await api.create(Operation.IMAGE_SWAP, body)


async def test_status_progresses_with_the_clock(
    api: RawApi, sample_photo: Path, sample_face: Path
) -> None:
    task_id = await _swap(api, sample_photo, sample_face)
    first = await api.detail(task_id)
    assert first["id"] == task_id
    assert first["status"] in (1, 2)
    api.emulator.advance_clock(0.02)  # past the waiting phase (a fifth of 50 ms)
    assert (await api.detail(str(task_id)))["status"] in (2, 0)
    done = await api.finish(task_id)
    assert done["status"] == 0
    assert done["additional_data"]
    [task] = api.emulator.ledger["tasks"]
    assert task["status"] == "succeeded"
    assert task["status_code"] == 0
    assert task["ends_at"] == pytest.approx(task["created_at"] + 0.05)


async def test_detail_by_get_query(api: RawApi, sample_photo: Path, sample_face: Path) -> None:
    task_id = await _swap(api, sample_photo, sample_face)
    headers = {"Authorization": f"Bearer {await api.token()}"}
    async with api.session.get(
        api.url(Operation.TASK_DETAIL), params={"id": str(task_id)}, headers=headers
    ) as reply:
        envelope = await reply.json()
    assert envelope["code"] == 200
    assert envelope["data"]["id"] == task_id


async def test_image_result_is_true(api: RawApi, sample_photo: Path, sample_face: Path) -> None:
    result = (await api.finish(await _swap(api, sample_photo, sample_face)))["additional_data"]
    merged = await _fetch(api, result["merge_url"])
    image = Image.open(io.BytesIO(merged))
    assert (result["width"], result["height"], result["size"]) == (*image.size, len(merged))
    assert image.size == (640, 480)
    assert merged != sample_photo.read_bytes()  # the face was pasted in
    thumbnail = Image.open(io.BytesIO(await _fetch(api, result["thumbnail_url"])))
    assert (result["thumbnail_width"], result["thumbnail_height"]) == thumbnail.size
    # Results stay 7 days, then their URLs expire.
    api.emulator.advance_clock(7 * 24 * 3600)
    async with api.session.get(result["merge_url"]) as reply:
        assert reply.status == 403


async def test_video_result_is_true(api: RawApi, sample_video: Path, sample_face: Path) -> None:
    body = {"main_key": await api.upload(sample_video), "target_key": await api.upload(sample_face)}
    result = (await api.finish(await api.create(Operation.VIDEO_SWAP, body)))["additional_data"]
    assert result["duration"] == pytest.approx(2.5)
    video = await _fetch(api, result["merge_url"])
    assert result["size"] == len(video) == sample_video.stat().st_size
    assert (result["merge_width"], result["merge_height"]) == (640, 360)
    cover = Image.open(io.BytesIO(await _fetch(api, result["cover_url"])))
    assert cover.size == (result["cover_width"], result["cover_height"])
    thumbnail = Image.open(io.BytesIO(await _fetch(api, result["cover_thumbnail_url"])))
    assert thumbnail.size == (result["thumbnail_width"], result["thumbnail_height"])


async def _detect(api: RawApi, photo: Path, faces: int | None = None) -> tuple[int, Any]:
    key = await api.upload(photo)
    if faces is not None:
        api.emulator.scenario(Operation.FACE_DETECTION, faces=faces)
    task_id = await api.create(Operation.FACE_DETECTION, {"main_key": key})
    return task_id, await api.finish(task_id)


async def test_detection_finds_faces_with_crops(api: RawApi, sample_photo: Path) -> None:
    _, detail = await _detect(api, sample_photo)
    [face] = detail["additional_data"]
    assert sorted(face["kps"]) == ["1", "2", "3", "4", "5"]
    crop_bytes = await _fetch(api, face["avatar_part_url"])
    crop = Image.open(io.BytesIO(crop_bytes))
    assert crop.size == (face["width"], face["height"])
    assert face["size"] == len(crop_bytes)
    for point in face["kps"].values():
        assert 0 <= point["x"] < face["width"]
        assert 0 <= point["y"] < face["height"]
    # The crop is a stored object like any other.
    access = await api.data(Operation.ACCESS_URL, {"key": face["avatar_part_key"]})
    assert await _fetch(api, access["url"]) == crop_bytes

    _, detail = await _detect(api, sample_photo, faces=3)
    assert len(detail["additional_data"]) == 3
    _, detail = await _detect(api, sample_photo, faces=0)
    assert detail["status"] == 602


async def test_multi_swap_accepts_only_faces_of_its_detection(
    api: RawApi, sample_photo: Path, sample_face: Path
) -> None:
    detection_id, detail = await _detect(api, sample_photo, faces=2)
    other_id, _other = await _detect(api, sample_photo)
    avatar = await api.upload(sample_face)
    pairs = [
        {"target_part_key": face["avatar_part_key"], "avatar_part_key": avatar}
        for face in detail["additional_data"]
    ]
    body = {"avatar_key": pairs, "get_face_id": str(detection_id), "is_hd": "1"}
    task_id = await api.create(Operation.MULTI_IMAGE_SWAP, body)
    result = (await api.finish(task_id))["additional_data"]
    assert (result["width"], result["height"]) == (640, 480)

    foreign = {**body, "get_face_id": other_id}
    assert (await api.call(Operation.MULTI_IMAGE_SWAP, foreign))["code"] == 400
    not_detection = {**body, "get_face_id": task_id}
    assert (await api.call(Operation.MULTI_IMAGE_SWAP, not_detection))["code"] == 400
    assert (await api.call(Operation.MULTI_IMAGE_SWAP, {**body, "avatar_key": []}))["code"] == 400
    # An image detection cannot drive a video swap.
    assert (await api.call(Operation.MULTI_VIDEO_SWAP, body))["code"] == 703


async def test_multi_video_swap(api: RawApi, sample_video: Path, sample_face: Path) -> None:
    detection_id, detail = await _detect(api, sample_video)
    [face] = detail["additional_data"]
    pairs = [
        {
            "target_part_key": face["avatar_part_key"],
            "avatar_part_key": await api.upload(sample_face),
        }
    ]
    body = {"avatar_key": pairs, "get_face_id": detection_id, "is_hd": 2}
    result = await api.finish(await api.create(Operation.MULTI_VIDEO_SWAP, body))
    assert result["additional_data"]["duration"] == pytest.approx(2.5)


async def test_task_fail_scenario(api: RawApi, sample_photo: Path, sample_face: Path) -> None:
    api.emulator.scenario(
        Operation.IMAGE_SWAP, task_fail={"code": 604, "message": "policy says no"}
    )
    task_id = await _swap(api, sample_photo, sample_face)
    detail = await api.finish(task_id)
    assert (detail["status"], detail["message"]) == (604, "policy says no")
    [task] = api.emulator.ledger["tasks"]
    assert (task["status"], task["status_code"]) == ("failed", 604)


async def test_unknown_task(api: RawApi) -> None:
    assert (await api.call(Operation.TASK_DETAIL, {"id": 1}))["code"] == 400


async def test_detail_never_reports_success_before_the_result_exists(
    emulator: Emulator, client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    """A task ending while its detail is being answered is reported as of one moment."""
    task = await client.create_image_swap(
        await client.upload(sample_photo), await client.upload(sample_face)
    )
    state = emulator._running_state()
    record = state.engine.get(task.id)
    assert record is not None
    # The clock reads just before the task's end, then after it, as a loaded machine may.
    readings = iter([record.ends_at - 0.001] + [record.ends_at + 1.0] * 10)
    real_clock = state.engine._clock
    state.engine._clock = type("SteppingClock", (), {"now": lambda self: next(readings)})()
    try:
        detail = await state.engine.detail(record, emulator.url)
    finally:
        state.engine._clock = real_clock
    assert detail.status != 0 or detail.additional_data
