"""The hottest replies (task details, results) by the one converter: every form the page
sends gives the documented values; a bad reply is a ProtocolError naming its field."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import attrs
import pytest

from miocreate_async import ImageSwapResult, ProtocolError, TaskKind, VideoSwapResult
from miocreate_async._converter import _converter, structure, structure_result
from miocreate_async._presigned import url_expires_at, url_expiry
from miocreate_async._wire import TaskDetail

URL = (
    "https://s.example/a/b.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20250101T000000Z"
    "&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=abc"
)
IMAGE = {
    "size": 20842,
    "width": 640,
    "height": 480,
    "merge_key": "1/asset/a.jpg",
    "merge_url": URL,
    "thumbnail_key": "1/asset/t.jpg",
    "thumbnail_url": URL,
    "thumbnail_width": 320,
    "thumbnail_height": 240,
}
VIDEO = {
    "size": "1048576",
    "duration": "3.5",
    "merge_key": "1/asset/a.mp4",
    "merge_url": URL,
    "merge_width": 1280,
    "cover_key": "1/asset/c.jpg",
    "cover_thumbnail_key": 17,  # typed int on the page, strings in its examples
}

GOOD: list[tuple[type[Any], Any, dict[str, Any]]] = [
    (TaskDetail, {"id": 5, "status": 1, "message": "", "additional_data": {}}, {"id": 5}),
    # Numbers as strings; defaults.
    (TaskDetail, {"id": "5", "status": "0"}, {"id": 5, "status": 0, "message": ""}),
    (TaskDetail, {"id": 5.0, "status": 2, "message": None, "extra": 1}, {"id": 5, "message": ""}),
    (ImageSwapResult, IMAGE, IMAGE),
    (
        ImageSwapResult,
        {**IMAGE, "size": "20842", "width": "640.0", "unknown": [1]},
        {"size": 20842, "width": 640},
    ),
    (
        ImageSwapResult,
        {k: v for k, v in IMAGE.items() if not k.startswith("thumbnail")},
        {"thumbnail_key": None, "thumbnail_width": None},
    ),
    (
        ImageSwapResult,
        {**IMAGE, "thumbnail_url": None, "thumbnail_width": None},
        {"thumbnail_url": None, "thumbnail_width": None, "thumbnail_height": 240},
    ),
    (VideoSwapResult, VIDEO, {"size": 1048576, "duration": 3.5, "cover_thumbnail_key": "17"}),
    (VideoSwapResult, {**VIDEO, "duration": 7}, {"duration": 7.0}),
]
BAD: list[tuple[type[Any], Any, str]] = [
    (TaskDetail, {"status": 1}, "id"),
    (TaskDetail, {"id": True, "status": 1}, "id"),
    (TaskDetail, {"id": 5, "status": {"a": 1}}, "status"),
    (TaskDetail, None, "TaskDetail"),
    (TaskDetail, [1, 2], "TaskDetail"),
    (ImageSwapResult, {**IMAGE, "merge_key": {"k": 1}}, "merge_key"),
    (ImageSwapResult, {**IMAGE, "width": "wide"}, "width"),
    (ImageSwapResult, {k: v for k, v in IMAGE.items() if k != "merge_url"}, "merge_url"),
    (VideoSwapResult, {**VIDEO, "duration": "long"}, "duration"),
]


@pytest.mark.parametrize(("cls", "data", "expected"), GOOD)
def test_every_form_the_page_sends_is_read(
    cls: type[Any], data: Any, expected: dict[str, Any]
) -> None:
    built = structure(data, cls)
    assert {name: getattr(built, name) for name in expected} == expected
    for name in expected:  # exactly of the field's type: a "5" is no id 5
        assert type(getattr(built, name)) is type(expected[name])


@pytest.mark.parametrize(("cls", "data", "field"), BAD)
def test_a_bad_reply_is_the_protocol_error_cattrs_describes(
    cls: type[Any], data: Any, field: str
) -> None:
    with pytest.raises(ProtocolError, match=field):
        structure(data, cls)


@pytest.mark.parametrize(
    ("data", "kind"),
    [(IMAGE, TaskKind.IMAGE_SWAP), (IMAGE, None), (VIDEO, TaskKind.VIDEO_SWAP), (VIDEO, None)],
)
def test_a_result_is_bound_as_it_is_built(data: dict[str, Any], kind: TaskKind | None) -> None:
    expires = datetime(2025, 1, 8, tzinfo=timezone.utc)

    async def downloader(*_: Any, **__: Any) -> Any:
        raise AssertionError("not called")

    result = structure_result(data, kind, expires_at=expires, downloader=downloader)
    assert isinstance(result, (ImageSwapResult, VideoSwapResult))
    expected = _converter().structure(data, type(result))
    assert result == attrs.evolve(expected, expires_at=expires, downloader=downloader)
    assert result.expires_at == expires
    assert result._downloader is downloader


def test_a_bad_result_is_a_protocol_error_naming_the_field() -> None:
    with pytest.raises(ProtocolError, match=r"additional_data.*width"):
        structure_result({**IMAGE, "width": "wide"}, TaskKind.IMAGE_SWAP, expires_at=None)


@pytest.mark.parametrize(
    ("url", "expiry"),
    [
        (URL, datetime(2025, 1, 8, tzinfo=timezone.utc)),
        # S3's own spelling found by a string search; the others by a scan: the same answer.
        ("https://h/x?x-amz-expires=60&x-amz-date=20250101T000000Z", 1735689660),
        ("https://h/x?X-Amz-Expires=60&X-Amz-Date=20250101T000000Z#frag", 1735689660),
        # A name in the path is not a parameter; the query's own wins.
        ("https://h/X-Amz-Date=20990101T000000Z/x?X-Amz-Date=20250101T000000Z&X-Amz-Expires=1",
         1735689601),
        ("https://h/x?X-Amz-Date=20250101T000000Z&X-Amz-Expires=", None),
        ("https://h/x?X-Amz-Date=20251301T000000Z&X-Amz-Expires=60", None),  # month 13
    ],
)  # fmt: skip
def test_url_expiry(url: str, expiry: datetime | int | None) -> None:
    if isinstance(expiry, int):
        expiry = datetime.fromtimestamp(expiry, timezone.utc)
    assert url_expiry(url) == expiry
    assert url_expires_at(url) == (None if expiry is None else expiry.timestamp())


def test_the_task_detail_request_is_sent_as_the_converter_would_send_it() -> None:
    from miocreate_async._converter import _converter, unstructure
    from miocreate_async._wire import TaskDetailRequest

    request = TaskDetailRequest(id=12345678901234567890)
    assert unstructure(request) == _converter().unstructure(request) == {"id": 12345678901234567890}
