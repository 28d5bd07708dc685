"""Every example on the provider's page structures into the models; the documented form is sent."""

from __future__ import annotations

from typing import Any

import pytest

from miocreate_async import (
    DetectedFace,
    Hd,
    ImageSwapResult,
    ProtocolError,
    TaskKind,
    TaskStatus,
    UploadTarget,
    VideoSwapResult,
)
from miocreate_async._converter import structure, structure_result, unstructure
from miocreate_async._models import FacePair
from miocreate_async._wire import (
    AccessUrlData,
    FaceDetectionRequest,
    FaceSwapRequest,
    MultiFaceSwapRequest,
    TaskCreated,
    TaskDetail,
    TaskDetailRequest,
    Token,
    TokenRequest,
    UploadUrlRequest,
)

# The examples on the provider's page, transcribed as the JSON they stand for.
PAGE_UPLOAD_URL = {
    "upload_url": "",
    "key": "temporary/20240816/3620/1723807527474-df2da456-b92b-b339-3bee-76365268665a.jpg",
}
PAGE_IMAGE_RESULT = {
    "size": 678609,
    "width": 512,
    "height": 768,
    "merge_key": "133902/asset/202408/1724032662728-494206dc-1475-7b96-c685-ee2095cac850.png",
    "merge_url": "",
    "thumbnail_key": "133902/asset/202408/1724032661400-b67c7abe-1ac4-9551-eeaf-bcd6c2419f28.png",
    "thumbnail_url": "",
    "thumbnail_width": 1080,
    "thumbnail_height": 540,
}
PAGE_VIDEO_RESULT = {
    "size": 7614239,
    "duration": 12.746067,
    "cover_key": "133902/asset/202408/1724035525663-9a94c106-b62f-0512-6a6d-5394e348052a.png",
    "cover_url": "",
    "merge_key": "133902/asset/202408/1724035528103-780ce768-d5f7-5512-1593-e8918046fd28.mp4",
    "merge_url": "",
    "cover_width": 1080,
    "merge_width": 1080,
    "cover_height": 554,
    "merge_height": 554,
    "thumbnail_width": 1080,
    "thumbnail_height": 540,
    "cover_thumbnail_key": "133902/asset/202408/1724035526966-bd9f9b5f-2caf.png",
    "cover_thumbnail_url": "",
}
PAGE_FACES = [
    {
        "kps": {
            "1": {"x": 27, "y": 45},
            "2": {"x": 67, "y": 45},
            "3": {"x": 49, "y": 75},
            "4": {"x": 24, "y": 84},
            "5": {"x": 65, "y": 85},
        },
        "size": 17913,
        "width": 87,
        "height": 121,
        "avatar_part_key": "temporary/20240819/133902/1724036183137-329eead9.png",
        "avatar_part_url": "",
    },
    {
        "kps": {
            "1": {"x": 17, "y": 61},
            "2": {"x": 59, "y": 61},
            "3": {"x": 33, "y": 86},
            "4": {"x": 20, "y": 106},
            "5": {"x": 57, "y": 106},
        },
        "size": "21322",
        "width": "93",
        "height": "137",
        "avatar_part_key": "temporary/20240819/133902/1724036183705-887bffbf.png",
        "avatar_part_url": "",
    },
]
PAGE_MULTI_REQUEST: dict[str, Any] = {
    "avatar_key": [
        {
            "target_part_key": "temporary/20240816/3620/1723785653905-459ed35e.jpg",
            "avatar_part_key": "temporary/20240816/6332581/172379952540-129237d8.png",
        },
        {
            "target_part_key": "temporary/20240816/6332581/1723799530615-fb873456.png",
            "avatar_part_key": "temporary/20240816/6332581/1723799530615-fb873456.png",
        },
    ],
    "get_face_id": "105267189",
    "is_hd": "1",
}


def test_upload_url_reply() -> None:
    target = structure(PAGE_UPLOAD_URL, UploadTarget)
    assert target.key.endswith("76365268665a.jpg")
    assert structure({"url": ""}, AccessUrlData).url == ""
    assert unstructure(UploadUrlRequest("demo.jpg")) == {"file_name": "demo.jpg"}


def test_swap_request_accepts_key_and_sends_main_key() -> None:
    # The page's example says "key" where its table says "main_key", and is_hd as 2.
    request = structure({"key": "a.jpg", "target_key": "b.jpg", "is_hd": 2}, FaceSwapRequest)
    assert request == FaceSwapRequest(main_key="a.jpg", target_key="b.jpg", is_hd=Hd.OFF)
    assert unstructure(FaceSwapRequest("a.jpg", "b.jpg", Hd.ON)) == {
        "main_key": "a.jpg",
        "target_key": "b.jpg",
        "is_hd": 1,
    }


def test_multi_request_accepts_strings_and_sends_ints() -> None:
    request = structure(PAGE_MULTI_REQUEST, MultiFaceSwapRequest)
    assert request.get_face_id == 105267189
    assert request.is_hd is Hd.ON
    assert len(request.avatar_key) == 2
    wire = unstructure(request)
    assert wire["get_face_id"] == 105267189
    assert wire["is_hd"] == 1
    assert wire["avatar_key"][0] == {
        "target_part_key": PAGE_MULTI_REQUEST["avatar_key"][0]["target_part_key"],
        "avatar_part_key": PAGE_MULTI_REQUEST["avatar_key"][0]["avatar_part_key"],
    }
    assert unstructure(FaceDetectionRequest("k.jpg")) == {"main_key": "k.jpg"}


@pytest.mark.parametrize("task_id", [1, 2, 3, 458, "458"])
def test_task_created(task_id: Any) -> None:
    assert structure({"task_id": task_id}, TaskCreated).task_id == int(task_id)


def test_task_detail_with_string_id() -> None:
    assert unstructure(TaskDetailRequest(id=106927142)) == {"id": 106927142}
    detail = structure(
        {"id": "106927142", "message": "", "status": 0, "additional_data": {}}, TaskDetail
    )
    assert detail.id == 106927142
    assert TaskStatus.from_code(detail.status) is TaskStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0, TaskStatus.SUCCEEDED),
        (1, TaskStatus.WAITING),
        (2, TaskStatus.PROCESSING),
        (3, TaskStatus.FAILED),
        (-1, TaskStatus.FAILED),
        (602, TaskStatus.FAILED),
    ],
)
def test_status_mapping(code: int, status: TaskStatus) -> None:
    assert TaskStatus.from_code(code) is status


@pytest.mark.parametrize("kind", [TaskKind.IMAGE_SWAP, TaskKind.MULTI_IMAGE_SWAP, None])
def test_image_result(kind: TaskKind | None) -> None:
    result = structure_result(PAGE_IMAGE_RESULT, kind)
    assert isinstance(result, ImageSwapResult)
    assert (result.size, result.width, result.height) == (678609, 512, 768)
    assert result.thumbnail_width == 1080


@pytest.mark.parametrize("kind", [TaskKind.VIDEO_SWAP, TaskKind.MULTI_VIDEO_SWAP, None])
def test_video_result(kind: TaskKind | None) -> None:
    result = structure_result(PAGE_VIDEO_RESULT, kind)
    assert isinstance(result, VideoSwapResult)
    assert result.duration == pytest.approx(12.746067)
    assert (result.merge_width, result.merge_height) == (1080, 554)
    # Typed int on the page, a string in its example.
    assert result.cover_thumbnail_key is not None
    assert result.cover_thumbnail_key.endswith(".png")


@pytest.mark.parametrize("kind", [TaskKind.FACE_DETECTION, None])
def test_detected_faces(kind: TaskKind | None) -> None:
    faces = structure_result(PAGE_FACES, kind)
    assert isinstance(faces, list)
    assert all(isinstance(face, DetectedFace) for face in faces)
    first, second = faces
    assert first.kps.left_eye.x == 27
    assert first.kps.mouth_right.y == 85
    assert [p.x for p in second.kps] == [17, 59, 33, 20, 57]
    assert (second.size, second.width, second.height) == (21322, 93, 137)
    assert len({first, second}) == 2  # hashable: usable as mapping keys
    assert unstructure(first)["kps"]["3"] == {"x": 49, "y": 75}


def test_unknown_fields_ignored() -> None:
    result = structure_result({**PAGE_IMAGE_RESULT, "new_field": [1, 2]}, TaskKind.IMAGE_SWAP)
    assert isinstance(result, ImageSwapResult)


def test_empty_additional_data_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="empty"):
        structure_result({}, TaskKind.IMAGE_SWAP)
    with pytest.raises(ProtocolError, match="empty"):
        structure_result([], None)


def test_bad_field_names_its_path() -> None:
    with pytest.raises(ProtocolError, match=r"additional_data\.size"):
        structure_result({**PAGE_IMAGE_RESULT, "size": "big"}, TaskKind.IMAGE_SWAP)


def test_secrets_never_in_reprs() -> None:
    token = Token(access_token="tok-SECRET", expires_in=5909)
    request = TokenRequest(client_id="id", client_secret="sec-SECRET")
    target = UploadTarget(
        upload_url="https://r2.example/k.jpg?X-Amz-Expires=1800&X-Amz-Signature=deadbeefSECRET",
        key="k.jpg",
    )
    face = FacePair(target_part_key="a", avatar_part_key="b")
    for obj in (token, request, target, face):
        assert "SECRET" not in repr(obj)
    assert "X-Amz-Expires=1800" in repr(target)
