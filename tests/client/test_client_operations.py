"""Every operation through the client, over loopback, against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from miocreate_async import (
    DetectedFace,
    ImageSwapResult,
    InvalidInputError,
    Key,
    MioCreate,
    TaskHandle,
    TaskKind,
    TaskStatus,
    VideoSwapResult,
)
from miocreate_async.emulator import Emulator, write_sample_video

pytestmark = pytest.mark.anyio


def tasks_of(emulator: Emulator, kind: TaskKind) -> list[dict[str, Any]]:
    return [task for task in emulator.ledger["tasks"] if task["kind"] == kind.value]


async def test_upload_url_and_access_url(client: MioCreate, emulator: Emulator) -> None:
    target = await client.get_upload_url("me.jpg")
    assert target.key
    assert "X-Amz-Signature" in target.upload_url
    assert "X-Amz-Signature=[redacted]" in repr(target)


async def test_upload_then_access_url_serves_the_bytes(
    client: MioCreate, emulator: Emulator, sample_photo: Path, tmp_path: Path
) -> None:
    key = await client.upload(sample_photo)
    assert isinstance(key, str)
    [upload] = [u for u in emulator.ledger["uploads"] if u["key"] == key]
    assert upload["size"] == sample_photo.stat().st_size
    url = await client.get_access_url(key)
    saved = await client.download(url, tmp_path / "copy.jpg")
    assert saved.read_bytes() == sample_photo.read_bytes()


async def test_image_swap_by_keys(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    image_key = await client.upload(sample_photo)
    face_key = await client.upload(sample_face)
    task = await client.create_image_swap(image_key, face_key, hd=True)
    assert task == TaskHandle(id=task.id, kind=TaskKind.IMAGE_SWAP)
    result = await client.wait(task, timeout=30)
    assert isinstance(result, ImageSwapResult)
    assert result.width > 0
    assert result.height > 0
    assert result.expires_at is not None
    [record] = tasks_of(emulator, TaskKind.IMAGE_SWAP)
    # The documented form is what goes on the wire.
    assert record["request"] == {"main_key": image_key, "target_key": face_key, "is_hd": 1}


async def test_get_task_reports_progress_then_result(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    image_key, face_key = await client.upload(sample_photo), await client.upload(sample_face)
    task = await client.create_image_swap(image_key, face_key)
    info = await client.get_task(task)
    assert info.id == task.id
    assert info.status in (TaskStatus.WAITING, TaskStatus.PROCESSING, TaskStatus.SUCCEEDED)
    await client.wait(task, timeout=30)
    info = await client.get_task(task)
    assert info.succeeded
    assert isinstance(info.result, ImageSwapResult)
    assert info.kind is TaskKind.IMAGE_SWAP


async def test_bare_id_gives_the_same_result_as_the_handle(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    image_key, face_key = await client.upload(sample_photo), await client.upload(sample_face)
    task = await client.create_image_swap(image_key, face_key)
    by_handle = await client.wait(task, timeout=30)
    by_int = await client.wait(task.id, timeout=30)
    by_str = await client.wait(str(task.id), timeout=30)
    assert by_handle == by_int == by_str


async def test_video_swap(
    client: MioCreate, emulator: Emulator, sample_face: Path, tmp_path: Path
) -> None:
    video = write_sample_video(tmp_path / "clip.mov", duration=3.25, size=100_000)
    result = await client.swap_video(video, face=sample_face)
    assert isinstance(result, VideoSwapResult)
    assert result.duration == pytest.approx(3.25, abs=0.01)
    saved = await result.download(tmp_path)
    assert saved.stat().st_size == result.size
    [record] = tasks_of(emulator, TaskKind.VIDEO_SWAP)
    assert record["request"]["is_hd"] == 2


async def test_swap_image_in_one_call_writes_a_real_image(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path, tmp_path: Path
) -> None:
    result = await client.swap_image(sample_photo, face=sample_face, hd=True)
    saved = await result.download(tmp_path / "out.png")
    # The result's real format names the file (a JPEG is not saved as out.png).
    assert saved == tmp_path / f"out{Path(result.merge_key).suffix}"
    assert saved.stat().st_size == result.size
    from PIL import Image

    with Image.open(saved) as image:
        assert image.size == (result.width, result.height)
    assert len(emulator.ledger["uploads"]) == 2


async def test_one_call_inputs_bytes_file_object_and_key(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    face_key = await client.upload(sample_face)
    with sample_photo.open("rb") as photo:
        by_file = await client.swap_image(photo, face=Key(face_key))
    by_bytes = await client.swap_image(sample_photo.read_bytes(), face=face_key)
    assert by_file.width == by_bytes.width
    # The face was uploaded once; each image once.
    assert len(emulator.ledger["uploads"]) == 3


async def test_detect_faces_then_swap_faces(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    emulator.scenario(operation="face_detection", faces=2)
    faces = await client.detect_faces(sample_photo)
    assert len(faces) == 2
    assert all(isinstance(face, DetectedFace) for face in faces)
    assert all(len(list(face.kps)) == 5 for face in faces)
    [detection] = tasks_of(emulator, TaskKind.FACE_DETECTION)
    assert {face.task_id for face in faces} == {detection["id"]}

    result = await client.swap_faces(sample_photo, {faces[0]: sample_face, faces[1]: sample_face})
    assert isinstance(result, ImageSwapResult)
    [multi] = tasks_of(emulator, TaskKind.MULTI_IMAGE_SWAP)
    assert multi["request"]["get_face_id"] == detection["id"]
    assert [pair["target_part_key"] for pair in multi["request"]["avatar_key"]] == [
        faces[0].avatar_part_key,
        faces[1].avatar_part_key,
    ]


async def test_multi_swaps_by_handle_and_keys(
    client: MioCreate, emulator: Emulator, sample_video: Path, sample_face: Path
) -> None:
    video_key, face_key = await client.upload(sample_video), await client.upload(sample_face)
    detection = await client.create_face_detection(video_key)
    faces = await client.wait(detection, timeout=30)
    task = await client.create_multi_video_swap(
        detection, {faces[0].avatar_part_key: face_key}, hd=True
    )
    assert task.kind is TaskKind.MULTI_VIDEO_SWAP
    result = await client.wait(task, timeout=30)
    assert isinstance(result, VideoSwapResult)
    [multi] = tasks_of(emulator, TaskKind.MULTI_VIDEO_SWAP)
    assert multi["request"]["is_hd"] == 1


async def test_multi_image_swap_with_string_detection_id(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    image_key, face_key = await client.upload(sample_photo), await client.upload(sample_face)
    detection = await client.create_face_detection(image_key)
    faces = await client.wait(detection, timeout=30)
    task = await client.create_multi_image_swap(str(detection.id), {faces[0]: face_key})
    assert isinstance(await client.wait(task, timeout=30), ImageSwapResult)


async def test_swap_faces_refuses_faces_of_different_detections(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    first = await client.detect_faces(sample_photo)
    second = await client.detect_faces(sample_photo)
    tasks_before = len(emulator.ledger["tasks"])
    with pytest.raises(InvalidInputError, match="one detect_faces"):
        await client.swap_faces(sample_photo, {first[0]: Key("a/b.png"), second[0]: Key("a/c.png")})
    assert len(emulator.ledger["tasks"]) == tasks_before


async def test_wait_cancels_cleanly(
    emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    async with Emulator(latency=60, seed=2) as slow, slow.client() as client:
        task = await client.create_image_swap(
            await client.upload(sample_photo), await client.upload(sample_face)
        )
        with anyio.move_on_after(0.3) as scope:
            await client.wait(task, timeout=120)
        assert scope.cancelled_caught
        requests_after = len(slow.ledger["requests"])
        await anyio.sleep(0.3)
        # Nothing keeps polling once the caller is gone.
        assert len(slow.ledger["requests"]) == requests_after
        # The client stays usable.
        assert (await client.get_task(task)).status in (
            TaskStatus.WAITING,
            TaskStatus.PROCESSING,
        )
