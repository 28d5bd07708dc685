"""The API's operations: one table of names, default paths, request types and reply types.

In the manner of aiogram's methods, each ``Operation`` knows what it sends and what it gets back
(``operation.endpoint.request`` and ``.reply``): the client converts every call in one helper,
and the emulator parses each request with the same table. The client and the emulator also share
the paths, so a path corrected here (several are unconfirmed by the provider) is corrected for
both. Users override paths through ``Config(paths={...})``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import attrs

from ._models import (
    AccessUrlData,
    AccessUrlRequest,
    FaceDetectionRequest,
    FaceSwapRequest,
    MultiFaceSwapRequest,
    TaskCreated,
    TaskDetail,
    TaskDetailRequest,
    TaskKind,
    Token,
    TokenRequest,
    UploadTarget,
    UploadUrlRequest,
)

# TaskKind lives with the models it shapes; it is named here too, beside the operations.
__all__ = ["DEFAULT_PATHS", "ENDPOINTS", "Endpoint", "Operation", "TaskKind"]

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
        return ENDPOINTS[self]

    def __str__(self) -> str:
        return self.value


_KINDS = frozenset(kind.value for kind in TaskKind)


@attrs.frozen
class Endpoint(Generic[Q, A]):
    """One operation's request type (sent as the JSON body) and reply type (the ``data``)."""

    operation: Operation
    request: type[Q]
    reply: type[A]


TOKEN = Endpoint(Operation.TOKEN, TokenRequest, Token)
UPLOAD_URL = Endpoint(Operation.UPLOAD_URL, UploadUrlRequest, UploadTarget)
ACCESS_URL = Endpoint(Operation.ACCESS_URL, AccessUrlRequest, AccessUrlData)
IMAGE_SWAP = Endpoint(Operation.IMAGE_SWAP, FaceSwapRequest, TaskCreated)
VIDEO_SWAP = Endpoint(Operation.VIDEO_SWAP, FaceSwapRequest, TaskCreated)
FACE_DETECTION = Endpoint(Operation.FACE_DETECTION, FaceDetectionRequest, TaskCreated)
MULTI_IMAGE_SWAP = Endpoint(Operation.MULTI_IMAGE_SWAP, MultiFaceSwapRequest, TaskCreated)
MULTI_VIDEO_SWAP = Endpoint(Operation.MULTI_VIDEO_SWAP, MultiFaceSwapRequest, TaskCreated)
TASK_DETAIL = Endpoint(Operation.TASK_DETAIL, TaskDetailRequest, TaskDetail)

#: Every operation's endpoint.
ENDPOINTS: Mapping[Operation, Endpoint[Any, Any]] = {
    endpoint.operation: endpoint
    for endpoint in (
        TOKEN,
        UPLOAD_URL,
        ACCESS_URL,
        IMAGE_SWAP,
        VIDEO_SWAP,
        FACE_DETECTION,
        MULTI_IMAGE_SWAP,
        MULTI_VIDEO_SWAP,
        TASK_DETAIL,
    )
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
