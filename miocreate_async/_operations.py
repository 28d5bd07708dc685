"""The API's operations: one table of names, default paths, request types and reply types.

In the manner of aiogram's methods, each ``Operation`` knows what it sends and what it gets back
(``operation.endpoint.request`` and ``.reply``): the client converts every call in one helper,
and the emulator parses each request with the same table. The client and the emulator also share
the paths, so a path corrected here (several are unconfirmed by the provider) is corrected for
both. Users override paths through ``Config(paths={...})``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import attrs

from ._models import TaskKind, UploadTarget

# TaskKind lives with the models it shapes; it is named here too, beside the operations.
__all__ = ["DEFAULT_PATHS", "Endpoint", "Operation", "TaskKind", "endpoints"]

Q = TypeVar("Q")
A = TypeVar("A")


class Operation(str, enum.Enum):
    """One documented API call."""

    TOKEN = "token"
    UPLOAD_URL = "upload_url"
    ACCESS_URL = "access_url"
    IMAGE_SWAP = "image_swap"
    VIDEO_SWAP = "video_swap"
    FACE_DETECTION = "face_detection"
    MULTI_IMAGE_SWAP = "multi_image_swap"
    MULTI_VIDEO_SWAP = "multi_video_swap"
    TASK_DETAIL = "task_detail"

    @classmethod
    def creating(cls, kind: TaskKind) -> Operation:
        """The operation that creates a task of ``kind``."""
        return cls(kind.value)

    @property
    def creates_task(self) -> bool:
        """Whether a call may spend credits: such calls are never blindly re-sent."""
        return self.value in _KINDS

    @property
    def endpoint(self) -> Endpoint[Any, Any]:
        """What the operation sends and what it gets back."""
        return endpoints()[self]

    def __str__(self) -> str:
        return self.value


_KINDS = frozenset(kind.value for kind in TaskKind)


@attrs.frozen
class Endpoint(Generic[Q, A]):
    """One operation's request type (sent as the JSON body) and reply type (the ``data``)."""

    operation: Operation
    request: type[Q]
    reply: type[A]


@functools.cache
def endpoints() -> Mapping[Operation, Endpoint[Any, Any]]:
    """Every operation's endpoint, built on first use: the request and reply classes are not
    loaded by ``import miocreate_async``."""
    from . import _wire as w

    o = Operation
    return {
        o.TOKEN: Endpoint(o.TOKEN, w.TokenRequest, w.Token),
        o.UPLOAD_URL: Endpoint(o.UPLOAD_URL, w.UploadUrlRequest, UploadTarget),
        o.ACCESS_URL: Endpoint(o.ACCESS_URL, w.AccessUrlRequest, w.AccessUrlData),
        o.IMAGE_SWAP: Endpoint(o.IMAGE_SWAP, w.FaceSwapRequest, w.TaskCreated),
        o.VIDEO_SWAP: Endpoint(o.VIDEO_SWAP, w.FaceSwapRequest, w.TaskCreated),
        o.FACE_DETECTION: Endpoint(o.FACE_DETECTION, w.FaceDetectionRequest, w.TaskCreated),
        o.MULTI_IMAGE_SWAP: Endpoint(o.MULTI_IMAGE_SWAP, w.MultiFaceSwapRequest, w.TaskCreated),
        o.MULTI_VIDEO_SWAP: Endpoint(o.MULTI_VIDEO_SWAP, w.MultiFaceSwapRequest, w.TaskCreated),
        o.TASK_DETAIL: Endpoint(o.TASK_DETAIL, w.TaskDetailRequest, w.TaskDetail),
    }


#: Paths relative to the base URL. Those marked unconfirmed in the notes follow the provider's
#: ``/v1/task/<name>`` convention; all are settings.
DEFAULT_PATHS: Mapping[Operation, str] = {
    Operation.TOKEN: "/v1/oauth/token",
    Operation.UPLOAD_URL: "/v1/source/upload-url",
    Operation.ACCESS_URL: "/v1/source/access-url",
    Operation.IMAGE_SWAP: "/v1/task/face-swap",
    Operation.VIDEO_SWAP: "/v1/task/video-face-swap",
    Operation.FACE_DETECTION: "/v1/task/get-faces",
    Operation.MULTI_IMAGE_SWAP: "/v1/task/multi-face-swap",
    Operation.MULTI_VIDEO_SWAP: "/v1/task/multi-video-face-swap",
    Operation.TASK_DETAIL: "/v1/task/detail",
}
