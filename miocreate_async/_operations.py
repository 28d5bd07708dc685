"""The API's operations: one table of names, methods and default paths.

The client and the emulator both read this table, so a path corrected here (several are
unconfirmed, see the project's API notes) is corrected for both. Users override paths through
``Config(paths={...})``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["DEFAULT_PATHS", "Operation", "TaskKind"]


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

    @property
    def creates_task(self) -> bool:
        """Whether a call may spend credits: such calls are never blindly re-sent."""
        return self in _TASK_CREATING

    @property
    def task_kind(self) -> TaskKind | None:
        return _KIND_OF.get(self)

    def __str__(self) -> str:
        return self.value


class TaskKind(str, enum.Enum):
    """What a task does; it decides the shape of the task's result."""

    IMAGE_SWAP = "image_swap"
    VIDEO_SWAP = "video_swap"
    FACE_DETECTION = "face_detection"
    MULTI_IMAGE_SWAP = "multi_image_swap"
    MULTI_VIDEO_SWAP = "multi_video_swap"

    @property
    def operation(self) -> Operation:
        return Operation(self.value)

    @property
    def is_video(self) -> bool:
        return self in (TaskKind.VIDEO_SWAP, TaskKind.MULTI_VIDEO_SWAP)

    def __str__(self) -> str:
        return self.value


_KIND_OF = {Operation(kind.value): kind for kind in TaskKind}
_TASK_CREATING = frozenset(_KIND_OF)

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
