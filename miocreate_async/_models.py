"""Public models: frozen, slotted attrs classes for what users see. No I/O here.

The private request and reply bodies live in ``_wire``, loaded on the first call.

Fields are named as on the wire. Fields marked ``local`` (``expires_at``, the detection task
of a face) are filled in by the client and never sent or read.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import attrs

from ._redact import redact_url

__all__ = [
    "DetectedFace",
    "FacePair",
    "Hd",
    "ImageSwapResult",
    "Keypoints",
    "Point",
    "ProgressCallback",
    "ResultDownloader",
    "ResultStreamer",
    "TaskHandle",
    "TaskInfo",
    "TaskKind",
    "TaskResult",
    "TaskStatus",
    "UploadTarget",
    "VideoSwapResult",
]


class TaskKind(str, enum.Enum):
    """What a task does; it decides the shape of the task's result (and, by the same name, the
    operation that creates it)."""

    IMAGE_SWAP = "image_swap"
    VIDEO_SWAP = "video_swap"
    FACE_DETECTION = "face_detection"
    MULTI_IMAGE_SWAP = "multi_image_swap"
    MULTI_VIDEO_SWAP = "multi_video_swap"

    @property
    def is_video(self) -> bool:
        return self in (TaskKind.VIDEO_SWAP, TaskKind.MULTI_VIDEO_SWAP)

    def __str__(self) -> str:
        return self.value


R = TypeVar("R")

#: ``result.read()``'s default cap: results are read whole in memory for small images only.
READ_LIMIT = 100 * 1024 * 1024
R_co = TypeVar("R_co", covariant=True)

#: Called with (bytes done, total bytes or None) at a bounded rate during transfers.
ProgressCallback = Callable[[int, "int | None"], object]


def _local(default: Any = None, **kwargs: Any) -> Any:
    """A field the client fills in; never part of the wire format."""
    return attrs.field(default=default, metadata={"local": True}, **kwargs)


def _url_repr(url: str | None) -> str:
    """Signed URLs show without their signature."""
    return repr(redact_url(url) if url else url)


class Hd(enum.IntEnum):
    """The page's ``is_hd``: 1 enables high quality, 2 disables it."""

    ON = 1
    OFF = 2

    @classmethod
    def of(cls, hd: bool | Hd) -> Hd:
        if isinstance(hd, Hd):
            return hd
        return cls.ON if hd else cls.OFF


class TaskStatus(enum.Enum):
    """A task's state; on the wire 0 succeeded, 1 waiting, 2 processing, anything else failed."""

    WAITING = "waiting"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def from_code(cls, code: int) -> TaskStatus:
        """The one mapping of wire status codes; any code not listed means the task failed."""
        return _STATUS_BY_CODE.get(code, _FAILED)

    @property
    def code(self) -> int:
        """The wire code the emulator sends for this status."""
        return _CODE_BY_STATUS[self]

    @property
    def done(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)


# Unconfirmed on the page (its example shows 0); public code calling the host agrees.
_STATUS_BY_CODE = {0: TaskStatus.SUCCEEDED, 1: TaskStatus.WAITING, 2: TaskStatus.PROCESSING}
_CODE_BY_STATUS = {status: code for code, status in _STATUS_BY_CODE.items()}
_CODE_BY_STATUS[TaskStatus.FAILED] = 3
_FAILED = TaskStatus.FAILED


@attrs.frozen
class UploadTarget:
    """Where to PUT a file, and the key that names it once stored."""

    upload_url: str = attrs.field(repr=_url_repr)
    key: str


@attrs.frozen
class FacePair:
    """One face of a detection (``target_part_key``) and the uploaded face replacing it."""

    target_part_key: str
    avatar_part_key: str


# --- results ----------------------------------------------------------------------------------


class ResultDownloader(Protocol):
    """Saves a signed URL to a file or folder (the client's ``download``, bound into results)."""

    def __call__(
        self,
        url: str,
        destination: str | PathLike[str],
        *,
        default_name: str,
        overwrite: bool,
        progress: ProgressCallback | None,
        expected_size: int | None = None,
    ) -> Awaitable[Path]: ...


class ResultStreamer(Protocol):
    """The chunks of a signed URL, as they arrive (the client's ``_stream``)."""

    def __call__(
        self, url: str, chunk_size: int, *, max_bytes: int | None = None, size: int | None = None
    ) -> AsyncIterator[bytes]: ...


class _Downloadable:
    """Mixin for results with a ``merge_url``: ``await result.download(path_or_dir)``."""

    __slots__ = ()
    merge_url: str
    merge_key: str
    _downloader: ResultDownloader | None
    _streamer: ResultStreamer | None

    async def download(
        self,
        destination: str | PathLike[str] = ".",
        *,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Stream the result to a file (or into a folder, under the result's own name).

        The file appears under its final name only once complete. Results come from a client
        (``get_task``/``wait``), which knows how to fetch them; a hand-built result cannot.
        """
        if self._downloader is None:
            raise RuntimeError(
                "this result is not bound to a client: use `await client.download(url, path)`"
            )
        name = self.merge_key.rsplit("/", 1)[-1] or "result"
        return await self._downloader(
            self.merge_url,
            destination,
            default_name=name,
            overwrite=overwrite,
            progress=progress,
            expected_size=getattr(self, "size", None),
        )

    async def read(self, max_bytes: int = READ_LIMIT) -> bytes:
        """The whole result in memory, for small images: a web reply, a bot's message.

        A result over ``max_bytes`` (100 MiB by default) raises ``ResultTooLargeError``: before
        any request when its size says so, else as soon as more arrived. Videos can be large:
        ``iter_bytes()`` or ``download()`` keep memory flat.
        """
        if self._streamer is None:
            raise RuntimeError(
                "this result is not bound to a client: use `await client.download(url, path)`"
            )
        size = getattr(self, "size", None)
        stream = self._streamer(
            self.merge_url, 1024 * 1024, max_bytes=max_bytes, size=size if size else None
        )
        return b"".join([chunk async for chunk in stream])

    def iter_bytes(self, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        """The result's bytes in chunks of at most ``chunk_size``, as they arrive::

            async for chunk in result.iter_bytes():
                await response.write(chunk)

        Iterate to the end (or close it with ``aclose()``) so the connection is released.
        """
        if self._streamer is None:
            raise RuntimeError(
                "this result is not bound to a client: use `await client.download(url, path)`"
            )
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        return self._streamer(self.merge_url, chunk_size)


def _downloader_field() -> Any:
    return attrs.field(
        default=None, eq=False, repr=False, alias="downloader", metadata={"local": True}
    )


def _streamer_field() -> Any:
    return attrs.field(
        default=None, eq=False, repr=False, alias="streamer", metadata={"local": True}
    )


@attrs.frozen
class ImageSwapResult(_Downloadable):
    """The swapped image (also the result of a multiple-face image swap)."""

    size: int
    width: int
    height: int
    merge_key: str
    merge_url: str = attrs.field(repr=_url_repr)
    thumbnail_key: str | None = None
    thumbnail_url: str | None = attrs.field(default=None, repr=_url_repr)
    thumbnail_width: int | None = None
    thumbnail_height: int | None = None
    #: When the signed URLs stop working (results are kept for 7 days).
    expires_at: datetime | None = _local()
    #: The service's id of the reply that delivered the result (``x-request-id``...).
    request_id: str | None = _local(eq=False)
    _downloader: ResultDownloader | None = _downloader_field()
    _streamer: ResultStreamer | None = _streamer_field()


@attrs.frozen
class VideoSwapResult(_Downloadable):
    """The swapped video (also the result of a multiple-face video swap)."""

    size: int
    duration: float
    merge_key: str
    merge_url: str = attrs.field(repr=_url_repr)
    merge_width: int | None = None
    merge_height: int | None = None
    cover_key: str | None = None
    cover_url: str | None = attrs.field(default=None, repr=_url_repr)
    cover_width: int | None = None
    cover_height: int | None = None
    # Typed int on the page, strings in its examples.
    cover_thumbnail_key: str | None = None
    cover_thumbnail_url: str | None = attrs.field(default=None, repr=_url_repr)
    thumbnail_width: int | None = None
    thumbnail_height: int | None = None
    expires_at: datetime | None = _local()
    request_id: str | None = _local(eq=False)
    _downloader: ResultDownloader | None = _downloader_field()
    _streamer: ResultStreamer | None = _streamer_field()


@attrs.frozen
class Point:
    """A position in pixels, from the top left corner."""

    x: int
    y: int


@attrs.frozen
class Keypoints:
    """The five landmarks of a face; on the wire an object keyed "1" to "5" in this order."""

    left_eye: Point
    right_eye: Point
    nose: Point
    mouth_left: Point
    mouth_right: Point

    def __iter__(self) -> Iterator[Point]:
        return iter(attrs.astuple(self, recurse=False))


@attrs.frozen
class DetectedFace:
    """A face found by face detection; hashable, so it can key a multi-swap mapping."""

    kps: Keypoints
    avatar_part_key: str
    width: int
    height: int
    size: int | None = None
    avatar_part_url: str | None = attrs.field(default=None, repr=_url_repr)
    #: The detection task that found the face (``get_face_id`` of a multi swap).
    task_id: int | None = _local()


TaskResult = ImageSwapResult | VideoSwapResult | list[DetectedFace]


@attrs.frozen
class TaskHandle(Generic[R_co]):
    """A created task: its id and kind. ``get_task``/``wait`` accept it, or a bare id."""

    id: int
    kind: TaskKind
    #: The service's id of the reply that created the task (``x-request-id``...), if one came.
    request_id: str | None = attrs.field(default=None, eq=False, repr=False)

    def __int__(self) -> int:
        return self.id

    def __str__(self) -> str:
        return str(self.id)


@attrs.frozen
class TaskInfo(Generic[R]):
    """A task's state as last seen; ``result`` is set once it succeeded."""

    id: int
    status: TaskStatus
    status_code: int
    message: str = ""
    kind: TaskKind | None = None
    result: R | None = None
    #: The service's id of the reply this was read from (``x-request-id``...), if one came.
    request_id: str | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def done(self) -> bool:
        return self.status.done

    @property
    def succeeded(self) -> bool:
        return self.status is TaskStatus.SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.status is TaskStatus.FAILED


# Resolve the string annotations now, while this module is their namespace: the package
# re-exports these classes under ``miocreate_async``, where the names would not resolve.
for _cls in list(globals().values()):
    if isinstance(_cls, type) and attrs.has(_cls) and _cls.__module__ == __name__:
        attrs.resolve_types(_cls)
del _cls
