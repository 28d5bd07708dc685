"""Vision mode: faces found in real photos, 602/603 from content, swaps that change only faces.

The photos are the public-domain portraits the vision extra ships (see emulator.samples). The
results are written under ``MIOCREATE_VISION_OUT`` when set, to look at them.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST_POLL

from miocreate_async import Config, MioCreate, TaskFailedError
from miocreate_async.emulator import Emulator, samples

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(not samples.vision_available(), reason="needs the vision extra"),
]

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture
async def vision(tmp_path: Path) -> AsyncIterator[MioCreate]:
    async with Emulator(vision=True, latency=0.02, seed=1, data_dir=tmp_path / "emu") as emu:
        client = emu.client(config=Config(base_url=emu.url, poll=FAST_POLL))
        async with client:
            yield client


def _pixels(data: bytes) -> Any:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


async def _fetch(client: MioCreate, url: str, tmp_path: Path, name: str) -> bytes:
    path = await client.download(url, tmp_path / name)
    data = path.read_bytes()
    keep = os.environ.get("MIOCREATE_VISION_OUT")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / name).write_bytes(data)
    return data


async def test_one_face_with_keypoints_inside_its_crop(vision: MioCreate, tmp_path: Path) -> None:
    [face] = await vision.detect_faces(samples.photo(real=True))
    assert 60 <= face.width <= 260
    assert 60 <= face.height <= 260
    for point in face.kps:
        assert 0 < point.x < face.width
        assert 0 < point.y < face.height
    left_eye, right_eye, nose, mouth_left, mouth_right = face.kps
    assert left_eye.x < nose.x < right_eye.x
    assert max(left_eye.y, right_eye.y) < nose.y < min(mouth_left.y, mouth_right.y)
    assert mouth_left.x < mouth_right.x
    assert face.avatar_part_url is not None
    crop = await _fetch(vision, face.avatar_part_url, tmp_path, "astronaut-face.png")
    # The crop is the face itself: looked at again, it shows one face.
    [again] = await vision.detect_faces(crop)
    assert again.width > face.width * 0.5


async def test_a_photo_without_a_face_is_602(vision: MioCreate) -> None:
    with pytest.raises(TaskFailedError) as swap:
        await vision.swap_image(samples.scenery(real=True), samples.face(real=True))
    assert swap.value.code == 602
    with pytest.raises(TaskFailedError) as detection:
        await vision.detect_faces(samples.scenery(real=True))
    assert detection.value.code == 602


async def test_a_face_image_without_a_face_is_602(vision: MioCreate) -> None:
    with pytest.raises(TaskFailedError) as swap:
        await vision.swap_image(samples.photo(real=True), samples.scenery(real=True))
    assert swap.value.code == 602


async def test_two_faces_left_to_right_and_603_for_a_single_swap(vision: MioCreate) -> None:
    group = samples.group_photo(real=True)
    faces = await vision.detect_faces(group)
    assert len(faces) == 2
    with pytest.raises(TaskFailedError) as swap:
        await vision.swap_image(group, samples.face(real=True))
    assert swap.value.code == 603


def _face_region(before: Any, after: Any) -> tuple[float, float]:
    """Mean change inside the changed area's box, and outside it by a margin."""
    diff = np.abs(after - before).sum(axis=2)
    rows, cols = np.nonzero(diff)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    inside = diff[top : bottom + 1, left : right + 1].mean()
    far = np.ones(diff.shape, bool)
    far[max(0, top - 20) : bottom + 21, max(0, left - 20) : right + 21] = False
    return float(inside), float(diff[far].max())


async def test_a_swap_changes_the_face_and_nothing_far_from_it(
    vision: MioCreate, tmp_path: Path
) -> None:
    photo = samples.photo(real=True)
    result = await vision.swap_image(photo, samples.face(real=True))
    assert result.merge_key.endswith(".png")  # a PNG stays lossless
    swapped = await _fetch(vision, result.merge_url, tmp_path, "astronaut-swapped.png")
    before, after = _pixels(photo), _pixels(swapped)
    assert before.shape == after.shape
    [face] = await vision.detect_faces(photo)
    diff = np.abs(after - before).sum(axis=2)
    rows, cols = np.nonzero(diff)
    # Every changed pixel lies around the face; the changed area is about the face's size.
    height, width = diff.shape
    assert rows.max() - rows.min() < height * 0.45
    assert cols.max() - cols.min() < width * 0.45
    assert 40 < rows.min() < 200
    assert 140 < cols.min() < 260
    inside, far = _face_region(before, after)
    assert inside > 30  # the face really changed (sum of three channels)
    assert far == 0  # and nothing else did, by even one level
    assert diff[300:, :].max() == 0
    assert diff[:, :120].max() == 0
    assert face.width > 60


async def test_multi_swap_of_one_of_two_faces_leaves_the_other(
    vision: MioCreate, tmp_path: Path
) -> None:
    group = samples.group_photo(real=True)
    path = tmp_path / "group.png"
    path.write_bytes(group)
    faces = await vision.detect_faces(path)
    left, right = faces
    result = await vision.swap_faces(path, {right: samples.photo(real=True)})
    swapped = await _fetch(vision, result.merge_url, tmp_path, "group-right-swapped.png")
    before, after = _pixels(group), _pixels(swapped)
    diff = np.abs(after - before).sum(axis=2)
    middle = before.shape[1] // 2
    assert diff[:, :middle].max() == 0  # the left face (and all its half) untouched
    assert diff[:, middle:].mean() > 1  # the right face replaced
    assert left.width > 0


async def test_video_result_is_a_playable_swapped_mp4(vision: MioCreate, tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    clip = samples.video(real=True)
    result = await vision.swap_video(clip, samples.face(real=True))
    assert result.merge_key.endswith(".mp4")
    data = await _fetch(vision, result.merge_url, tmp_path, "astronaut-swapped.mp4")
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    with av.open(io.BytesIO(clip)) as container:
        originals = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == len(originals) == 30
    assert result.duration == pytest.approx(2.0, abs=0.1)
    assert (result.merge_width, result.merge_height) == (512, 512)
    # Every frame's face changed; the frame's corners (far from the face) barely did.
    for frame, original in zip(frames, originals, strict=True):
        diff = np.abs(frame.astype(int) - original.astype(int)).sum(axis=2)
        assert diff[40:220, 150:330].mean() > 20
        assert diff[400:, :100].mean() < 12  # re-encoding alone (three channels summed)
    assert result.cover_url is not None
    cover = await _fetch(vision, result.cover_url, tmp_path, "astronaut-swapped-cover.jpg")
    cover_pixels = _pixels(cover)
    assert cover_pixels.shape == (512, 512, 3)
    assert np.abs(cover_pixels - frames[0].astype(int)).mean() < 6  # taken from the result


async def test_cartoon_mode_stays_the_default(tmp_path: Path) -> None:
    async with Emulator(latency=0.02, data_dir=tmp_path / "emu") as emu:
        assert emu.settings.vision is False
        async with emu.client(config=Config(base_url=emu.url, poll=FAST_POLL)) as client:
            # Cartoon mode does not look: the scenery has "its" one face.
            faces = await client.detect_faces(samples.scenery(real=True))
    assert len(faces) == 1


async def test_a_video_without_frames_is_701(vision: MioCreate) -> None:
    # The cartoon sample is a container without a video stream: nothing to decode.
    with pytest.raises(TaskFailedError) as swap:
        await vision.swap_video(samples.video(real=False), samples.face(real=True))
    assert swap.value.code == 701
    with pytest.raises(TaskFailedError) as detection:
        await vision.detect_faces(samples.video(real=False))
    assert detection.value.code == 701


async def test_multi_video_swap_of_one_of_two_faces(vision: MioCreate, tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    from fractions import Fraction

    from miocreate_async.emulator import _video

    group = _pixels(samples.group_photo(real=True)).astype(np.uint8)
    clip = tmp_path / "group.mp4"
    _video.encode(clip, (group for _ in range(6)), Fraction(12))
    with av.open(str(clip)) as container:
        originals = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    left, right = await vision.detect_faces(clip)
    result = await vision.swap_faces(clip, {left: samples.face(real=True)})
    data = await _fetch(vision, result.merge_url, tmp_path, "group-left-swapped.mp4")
    with av.open(io.BytesIO(data)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == len(originals) == 6
    middle = group.shape[1] // 2
    for frame, original in zip(frames, originals, strict=True):
        diff = np.abs(frame.astype(int) - original.astype(int)).sum(axis=2)
        # The left face replaced; the right one as it was, but for re-encoding's small noise.
        assert (diff[:, :middle] > 90).sum() > 2000
        assert (diff[:, middle:] > 90).mean() < 0.002
    assert right.width > 0
