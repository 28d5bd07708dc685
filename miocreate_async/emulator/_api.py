"""The API's operations: validation as the service does it, then the state change.

Each handler takes one call and returns the envelope's ``data``, or raises ApiError with the
documented code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from .._converter import structure, unstructure
from .._errors import ProtocolError
from .._formats import media_type_of_name
from .._models import TaskStatus, UploadTarget
from .._operations import Operation, TaskKind
from .._wire import (
    AccessUrlData,
    AccessUrlRequest,
    FaceDetectionRequest,
    FaceSwapRequest,
    MultiFaceSwapRequest,
    TaskCreated,
    TaskDetailRequest,
    TokenRequest,
    UploadUrlRequest,
)
from . import _imaging
from ._engine import Task
from ._faces import Face
from ._faults import Rule
from ._keys import temporary_key
from ._ledger import UploadRecord
from ._state import State
from ._storage import StoredObject

__all__ = ["HANDLERS", "MESSAGES", "ApiError", "Call"]

#: The reference page's code table.
MESSAGES = {
    200: "ok",
    400: "Request parameter error",
    401: "Authorization failed (the token is invalid or expired)",
    500: "Server exception occurred",
    601: "Task exception occurred",
    602: "No face detected",
    603: "Multiple faces detected",
    604: "The file may not meet our policy requirement",
    605: "The target photo may not meet our policy requirement",
    701: "File exception occurred",
    702: "The source file for the key was not found",
    703: "Only supported formats: JPG, PNG, WEBP, GIF, M4V, MP4, MOV and WEBM",
    704: "Only supported files: Max 500 MB",
    801: "Not enough credits",
    802: "Not enough requests",
}


class ApiError(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or MESSAGES.get(code, "error")
        super().__init__(self.message)


@attrs.frozen
class Call:
    state: State
    operation: Operation
    body: Any
    query: Mapping[str, str]
    rule: Rule | None
    base_url: str


def _parse(call: Call) -> Any:
    """The request of ``call``, of the type the shared operations table names."""
    try:
        return structure(call.body, call.operation.endpoint.request)
    except ProtocolError as exc:
        raise ApiError(400, f"{MESSAGES[400]}: {exc.message}") from None


async def _token(call: Call) -> Any:
    request: TokenRequest = _parse(call)
    settings = call.state.settings
    if (request.client_id, request.client_secret) != (settings.client_id, settings.client_secret):
        raise ApiError(401, "Authorization failed (unknown client_id or wrong client_secret)")
    return unstructure(call.state.issue_token())


async def _upload_url(call: Call) -> Any:
    request: UploadUrlRequest = _parse(call)
    media = media_type_of_name(request.file_name)
    if media is None:
        raise ApiError(703)
    state = call.state
    now = state.clock.now()
    extension = request.file_name.rpartition(".")[2].lower()
    key = temporary_key(now, extension)
    ttl = state.settings.upload_url_ttl
    url = state.signer.sign(call.base_url, "PUT", key, ttl)
    state.ledger.uploads[key] = UploadRecord(key, request.file_name, now, now + ttl)
    return unstructure(UploadTarget(upload_url=url, key=key))


async def _access_url(call: Call) -> Any:
    request: AccessUrlRequest = _parse(call)
    state = call.state
    if state.storage.get(request.key) is None:
        raise ApiError(702)
    url = state.signer.sign(call.base_url, "GET", request.key, state.settings.access_url_ttl)
    return unstructure(AccessUrlData(url=url))


async def _stored(call: Call, key: str, *, video: bool | None) -> StoredObject:
    """The object ``key``, checked: 702 missing, 704 too large, 703 wrong format, 701 broken."""
    state = call.state
    stored = state.storage.get(key)
    if stored is None:
        raise ApiError(702, f"{MESSAGES[702]}: {key}")
    if stored.size > state.settings.max_object_bytes:
        raise ApiError(704)
    if stored.media is None or (video is not None and stored.media.is_video != video):
        raise ApiError(703)
    if not stored.media.is_video:
        if stored.decodable is None:
            stored.decodable = await _decodes(call, stored)
        if not stored.decodable:
            raise ApiError(
                701,
                f"{MESSAGES[701]}: the image cannot be decoded, or has more than "
                f"{_imaging.MAX_PIXELS:,} pixels",
            )
    return stored


async def _decodes(call: Call, stored: StoredObject) -> bool:
    try:
        size = await asyncio.get_running_loop().run_in_executor(
            call.state.storage.executor, _imaging.image_size, stored.path
        )
    except _imaging.ImagingUnavailable:
        return True  # without Pillow, the sniffed format is all that can be known
    return size is not None


def _create(
    call: Call,
    kind: TaskKind,
    main: StoredObject,
    swaps: list[tuple[Face | None, StoredObject]],
) -> Any:
    state, rule = call.state, call.rule
    if not state.spend(kind):
        raise ApiError(801)
    task = state.engine.create(
        kind,
        call.body,
        main,
        swaps,
        faces=rule.faces if rule is not None and rule.faces is not None else 1,
        failure=rule.task_fail if rule is not None else None,
    )
    return unstructure(TaskCreated(task_id=task.id))


def _face_swap(kind: TaskKind) -> Callable[[Call], Awaitable[Any]]:
    async def handler(call: Call) -> Any:
        request: FaceSwapRequest = _parse(call)
        main = await _stored(call, request.main_key, video=kind.is_video)
        target = await _stored(call, request.target_key, video=False)
        return _create(call, kind, main, [(None, target)])

    return handler


async def _face_detection(call: Call) -> Any:
    request: FaceDetectionRequest = _parse(call)
    main = await _stored(call, request.main_key, video=None)
    return _create(call, TaskKind.FACE_DETECTION, main, [])


async def _detection(call: Call, task_id: int) -> Task:
    task = call.state.engine.get(task_id)
    if task is None or task.kind is not TaskKind.FACE_DETECTION:
        raise ApiError(400, f"{MESSAGES[400]}: get_face_id {task_id} is not a face detection task")
    now = call.state.clock.now()  # one reading: settled and judged at the same moment
    await call.state.engine.settle(task, call.base_url, now)
    if task.status(now) is not TaskStatus.SUCCEEDED:
        raise ApiError(400, f"{MESSAGES[400]}: face detection {task_id} has not succeeded")
    return task


def _multi_swap(kind: TaskKind) -> Callable[[Call], Awaitable[Any]]:
    async def handler(call: Call) -> Any:
        request: MultiFaceSwapRequest = _parse(call)
        if not request.avatar_key:
            raise ApiError(400, f"{MESSAGES[400]}: avatar_key is empty")
        detection = await _detection(call, request.get_face_id)
        media = detection.main.media
        if media is None or media.is_video != kind.is_video:
            raise ApiError(703)
        swaps: list[tuple[Face | None, StoredObject]] = []
        for pair in request.avatar_key:
            face = detection.found.get(pair.target_part_key)
            if face is None:
                raise ApiError(
                    400,
                    f"{MESSAGES[400]}: {pair.target_part_key} is not a face of task {detection.id}",
                )
            swaps.append((face, await _stored(call, pair.avatar_part_key, video=False)))
        return _create(call, kind, detection.main, swaps)

    return handler


async def _task_detail(call: Call) -> Any:
    body = call.body if isinstance(call.body, Mapping) and "id" in call.body else dict(call.query)
    request: TaskDetailRequest = _parse(attrs.evolve(call, body=body))
    task = call.state.engine.get(request.id)
    if task is None:
        raise ApiError(400, f"{MESSAGES[400]}: no task {request.id}")
    return unstructure(await call.state.engine.detail(task, call.base_url))


HANDLERS: Mapping[Operation, Callable[[Call], Awaitable[Any]]] = {
    Operation.TOKEN: _token,
    Operation.UPLOAD_URL: _upload_url,
    Operation.ACCESS_URL: _access_url,
    Operation.IMAGE_SWAP: _face_swap(TaskKind.IMAGE_SWAP),
    Operation.VIDEO_SWAP: _face_swap(TaskKind.VIDEO_SWAP),
    Operation.FACE_DETECTION: _face_detection,
    Operation.MULTI_IMAGE_SWAP: _multi_swap(TaskKind.MULTI_IMAGE_SWAP),
    Operation.MULTI_VIDEO_SWAP: _multi_swap(TaskKind.MULTI_VIDEO_SWAP),
    Operation.TASK_DETAIL: _task_detail,
}
