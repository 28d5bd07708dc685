"""The task engine: a task's status is derived from the clock, its result built on first look.

No background job runs per task, so thousands of tasks in flight cost only their records.
A task waits briefly, processes, and ends at ``ends_at``; the first poll after that builds the
result files (in a worker thread) under the task's lock, once.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar, cast

import attrs

from .._converter import unstructure
from .._formats import MediaType
from .._models import DetectedFace, ImageSwapResult, Keypoints, Point, TaskStatus, VideoSwapResult
from .._operations import TaskKind
from .._wire import TaskDetail
from . import _imaging
from ._clock import Clock
from ._faces import Face, Refusal
from ._faults import TaskFail
from ._keys import asset_key, temporary_key
from ._looks import Swap, looks
from ._settings import EmulatorSettings
from ._signing import Signer
from ._storage import Storage, StoredObject, link_or_copy

__all__ = ["Engine", "Task"]

T = TypeVar("T")

#: A render's output files and what it returned.
_Rendered = tuple[tuple[Path, ...], object]


class _Abandoned(Exception):
    """The first render of some inputs failed or was cancelled; others render on their own."""


_FIRST_TASK_ID = 105267189


@attrs.define(eq=False)
class Task:
    id: int
    kind: TaskKind
    #: The JSON body the task was created with.
    request: Any
    created_at: float
    started_at: float
    ends_at: float
    main: StoredObject
    #: (face or None for "the" face, new face) pairs; empty for a detection.
    swaps: list[tuple[Face | None, StoredObject]]
    faces: int = 1
    failure: TaskFail | None = None
    result: Any = None
    #: For a detection: each crop's key and the face it shows.
    found: dict[str, Face] = attrs.Factory(dict)
    lock: asyncio.Lock = attrs.Factory(asyncio.Lock)

    def status(self, now: float) -> TaskStatus:
        if now < self.started_at:
            return TaskStatus.WAITING
        if now < self.ends_at:
            return TaskStatus.PROCESSING
        return TaskStatus.FAILED if self.failure else TaskStatus.SUCCEEDED

    def status_code(self, now: float) -> int:
        status = self.status(now)
        if status is TaskStatus.FAILED and self.failure is not None:
            return self.failure.code
        return status.code

    def summary(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "status": self.status(now).value,
            "status_code": self.status_code(now),
            "message": self.failure.message if self.failure else "",
            "request": self.request,
            "created_at": self.created_at,
            "ends_at": self.ends_at,
        }


class Engine:
    def __init__(
        self,
        settings: EmulatorSettings,
        seed: int,
        clock: Clock,
        storage: Storage,
        signer: Signer,
        executor: Executor,
    ) -> None:
        self._settings = settings
        self._seed = seed
        self._clock = clock
        self._storage = storage
        self._signer = signer
        self._executor = executor
        self._looks = looks(settings.vision)
        self.reset()

    def reset(self) -> None:
        self._tasks: dict[int, Task] = {}
        self._renders: dict[Hashable, asyncio.Future[_Rendered]] = {}
        self._next_id = _FIRST_TASK_ID
        self._rng = random.Random(f"latency:{self._seed}")

    def get(self, task_id: int) -> Task | None:
        return self._tasks.get(task_id)

    def create(
        self,
        kind: TaskKind,
        request: Any,
        main: StoredObject,
        swaps: list[tuple[Face | None, StoredObject]],
        *,
        faces: int = 1,
        failure: TaskFail | None = None,
    ) -> Task:
        now = self._clock.now()
        latency = self._settings.latency.draw(kind, self._rng)
        task = Task(
            id=self._next_id,
            kind=kind,
            request=request,
            created_at=now,
            started_at=now + min(latency * 0.2, 1.0),
            ends_at=now + latency,
            main=main,
            swaps=swaps,
            faces=faces,
            failure=failure,
        )
        if kind is TaskKind.FACE_DETECTION and faces == 0 and failure is None:
            task.failure = TaskFail(602, "No face detected")
        self._tasks[task.id] = task
        self._next_id += 1
        return task

    async def settle(self, task: Task, base_url: str, now: float | None = None) -> None:
        """Build the result of a task that has just succeeded; a broken build fails the task."""
        now = self._clock.now() if now is None else now
        if task.result is not None or task.status(now) is not TaskStatus.SUCCEEDED:
            return
        async with task.lock:
            if task.result is not None or task.failure is not None:
                return
            try:
                task.result = await self._build(task, base_url)
            except Refusal as refusal:
                task.failure = TaskFail(refusal.code, refusal.message)
            except (_imaging.ImagingUnavailable, OSError, ValueError) as exc:
                task.failure = TaskFail(601, f"Task exception occurred: {exc}")
            except Exception as exc:  # a result that cannot be built fails its task, not the poll
                task.failure = TaskFail(601, f"Task exception occurred: {type(exc).__name__}")

    async def detail(self, task: Task, base_url: str) -> TaskDetail:
        # One reading of the clock for both: a task ending between two readings would be
        # reported succeeded before its result was built.
        now = self._clock.now()
        await self.settle(task, base_url, now)
        status = task.status(now)
        data: Any = task.result if status is TaskStatus.SUCCEEDED else {}
        message = task.failure.message if task.failure and status.done else ""
        return TaskDetail(task.id, task.status_code(now), message, data)

    def snapshot(self) -> list[dict[str, Any]]:
        now = self._clock.now()
        return [task.summary(now) for task in self._tasks.values()]

    # --- results ------------------------------------------------------------------------------

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _url(self, base_url: str, key: str) -> str:
        return self._signer.sign(base_url, "GET", key, self._settings.result_url_ttl)

    def _new_key(self, extension: str) -> tuple[str, Path]:
        key = asset_key(self._clock.now(), extension)
        return key, self._storage.path_for(key)

    async def _build(self, task: Task, base_url: str) -> Any:
        if task.kind is TaskKind.FACE_DETECTION:
            return await self._detect(task, base_url)
        swaps = [(face, new_face.path) for face, new_face in task.swaps]
        inputs = (
            task.kind.is_video,
            _identity(task.main),
            tuple((face, _identity(new_face)) for face, new_face in task.swaps),
        )
        if task.kind.is_video:
            return await self._video(task, inputs, swaps, base_url)
        media = task.main.media or MediaType.JPEG
        extension = self._looks.result_extension(media)
        merge_key, merge_path = self._new_key(extension)
        thumb_key, thumb_path = self._new_key("jpg")
        merged, thumb = await self._render(
            inputs,
            (merge_path, thumb_path),
            functools.partial(self._looks.swap_image, task.main.path, swaps, extension == "png"),
        )
        self._storage.register(merge_key, MediaType.PNG if extension == "png" else MediaType.JPEG)
        self._storage.register(thumb_key, MediaType.JPEG)
        return unstructure(
            ImageSwapResult(
                size=merged.size,
                width=merged.width,
                height=merged.height,
                merge_key=merge_key,
                merge_url=self._url(base_url, merge_key),
                thumbnail_key=thumb_key,
                thumbnail_url=self._url(base_url, thumb_key),
                thumbnail_width=thumb.width,
                thumbnail_height=thumb.height,
            )
        )

    async def _video(self, task: Task, inputs: Hashable, swaps: list[Swap], base_url: str) -> Any:
        media = MediaType.MP4 if self._settings.vision else task.main.media or MediaType.MP4
        merge_key, merge_path = self._new_key(media.extension)
        cover_key, cover_path = self._new_key("jpg")
        thumb_key, thumb_path = self._new_key("jpg")
        video = await self._render(
            inputs,
            (merge_path, cover_path, thumb_path),
            functools.partial(self._looks.swap_video, task.main.path, swaps),
        )
        merged = self._storage.register(merge_key, media)
        self._storage.register(cover_key, MediaType.JPEG)
        self._storage.register(thumb_key, MediaType.JPEG)
        return unstructure(
            VideoSwapResult(
                size=merged.size,
                duration=video.duration,
                merge_key=merge_key,
                merge_url=self._url(base_url, merge_key),
                merge_width=video.width,
                merge_height=video.height,
                cover_key=cover_key,
                cover_url=self._url(base_url, cover_key),
                cover_width=video.cover.width,
                cover_height=video.cover.height,
                cover_thumbnail_key=thumb_key,
                cover_thumbnail_url=self._url(base_url, thumb_key),
                thumbnail_width=video.thumbnail.width,
                thumbnail_height=video.thumbnail.height,
            )
        )

    async def _render(
        self, inputs: Hashable, outs: tuple[Path, ...], render: Callable[..., T]
    ) -> T:
        """Render once per distinct inputs; later tasks with the same inputs get hard links.

        A batch of a thousand swaps of one photo then costs one render, not a thousand.
        """
        pending = self._renders.get(inputs)
        if pending is not None:
            try:
                first_outs, earlier = await asyncio.shield(pending)
            except _Abandoned:
                pass
            else:
                for first, out in zip(first_outs, outs, strict=True):
                    await self._run(link_or_copy, first, out)
                return cast(T, earlier)
        future: asyncio.Future[_Rendered] = asyncio.get_running_loop().create_future()
        self._renders[inputs] = future
        try:
            result: object = await self._run(render, *outs)
        except BaseException as exc:
            del self._renders[inputs]
            future.set_exception(_Abandoned(str(exc)))
            future.exception()  # retrieved: waiters render again themselves
            raise
        future.set_result((outs, result))
        return cast(T, result)

    async def _detect(self, task: Task, base_url: str) -> Any:
        keys: list[str] = []

        def out() -> Path:
            keys.append(temporary_key(self._clock.now(), "png"))
            return self._storage.path_for(keys[-1])

        media = task.main.media or MediaType.JPEG
        crops = await self._run(self._looks.detect, task.main.path, media, task.faces, out)
        faces = []
        for key, crop in zip(keys, crops, strict=True):
            self._storage.register(key, MediaType.PNG)
            task.found[key] = crop.face
            kps = Keypoints(*(Point(x, y) for x, y in crop.keypoints))
            faces.append(
                DetectedFace(
                    kps=kps,
                    avatar_part_key=key,
                    width=crop.picture.width,
                    height=crop.picture.height,
                    size=crop.picture.size,
                    avatar_part_url=self._url(base_url, key),
                )
            )
        return unstructure(faces)


def _identity(stored: StoredObject) -> Hashable:
    """What makes two inputs the same picture (a key may be uploaded again)."""
    return (stored.key, stored.size, stored.sha256)
