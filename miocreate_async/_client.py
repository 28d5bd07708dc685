"""MioCreate: one method per API operation, and one call each for the common jobs."""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import math
import os
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import aclosing
from datetime import datetime, timedelta, timezone
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast, overload
from urllib.parse import unquote, urlsplit

import aiohttp
import anyio
import attrs

from ._auth import Auth, ClientCredentialsAuth, StaticTokenAuth
from ._checks import check_timeout
from ._config import IMAGE_TIMEOUT, VIDEO_TIMEOUT, Config, Environment, PollPolicy, log_from_env
from ._correlation import current_job, log_extra
from ._errors import (
    CALLED,
    ClientClosedError,
    ConfigurationError,
    InvalidInputError,
    MioCreateError,
    ProtocolError,
    ResultTooLargeError,
    SubmissionUncertainError,
    SwapInterrupted,
    TaskTimeoutError,
    task_failed_error,
)
from ._fairness import Fairness, Lane, Scheduler, Turn, check_key, check_lane
from ._formats import is_video_name
from ._models import (
    DetectedFace,
    FacePair,
    Hd,
    ImageSwapResult,
    ProgressCallback,
    TaskHandle,
    TaskInfo,
    TaskResult,
    TaskStatus,
    UploadTarget,
    VideoSwapResult,
)
from ._operations import Endpoint, Operation, TaskKind
from ._pacing import Limiter
from ._redact import REDACTED
from ._retry import ConnectionFailures, RetryPolicy
from ._session import Session
from ._telemetry import count, span

if TYPE_CHECKING:
    from ._batch import BatchEvent, Jobs, SwapJob, SwapResults
    from ._converter import structure, structure_result, unstructure
    from ._estimate import Estimate, Prices
    from ._journal import Journal
    from ._poller import Learnt
    from ._presigned import url_expiry
    from ._transfer._cache import ProgressFor, UploadCache, Wanted
    from ._transfer._inputs import Key, MediaInput, PreparedUpload, UploadSource
    from ._wire import (
        AccessUrlData,
        MultiFaceSwapRequest,
        TaskCreated,
        TaskDetailRequest,
        Token,
        TokenRequest,
    )

__all__ = ["MioCreate", "TaskRef"]

R = TypeVar("R")
Q = TypeVar("Q")
A = TypeVar("A")
P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("miocreate_async")


def _public(
    method: Callable[Concatenate[MioCreate, P], Awaitable[T]],
) -> Callable[Concatenate[MioCreate, P], Coroutine[Any, Any, T]]:
    """A method users call: checked against the client's event loop, its errors named after
    it, and logged at INFO (with ``MIOCREATE_LOG=info``) with how long it took."""
    name = method.__name__.lstrip("_")

    @functools.wraps(method)
    async def call(self: MioCreate, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if CALLED.get() is not None:  # inside another public call, which checked and names
            return await method(self, *args, **kwargs)
        self._session.check_loop()
        token = CALLED.set(name)
        started = time.monotonic()
        try:
            result = await method(self, *args, **kwargs)
        except MioCreateError as error:
            error.operation = name
            if error.job_id is None:
                error.job_id = current_job.get()
            logger.info(
                "%s failed after %.2fs: %r",
                name,
                time.monotonic() - started,
                error,
                extra=log_extra(error),
            )
            raise
        finally:
            CALLED.reset(token)
        if logger.isEnabledFor(logging.INFO):  # one call instead of two: this runs per poll
            task_id = _task_in(result) or (_task_in(args[0]) if args else None)
            # The reply a result came in (a handle's, a task's, a swap result's), if any.
            extra = log_extra(task_id=task_id, request_id=getattr(result, "request_id", None))
            logger.info("%s done in %.2fs", name, time.monotonic() - started, extra=extra)
        return result

    return call


def _task_in(value: object) -> int | None:
    """The task id a call's argument or result names (for its log record), if any."""
    if isinstance(value, (TaskHandle, TaskInfo)):
        return value.id
    return value if isinstance(value, int) and not isinstance(value, bool) else None


#: A task: the handle a ``create_*`` call returned, or its id as a user may have stored it.
TaskRef = TaskHandle[Any] | int | str


def _load_calls() -> None:
    """Bind what every call uses (the converter, the task detail's body, the URL expiry) as
    this module's globals: loaded with the first client, not by ``import miocreate_async``,
    and then found as cheaply as any global on each call."""
    global structure, structure_result, unstructure, url_expiry, TaskDetailRequest
    from ._converter import structure, structure_result, unstructure
    from ._presigned import url_expiry
    from ._wire import TaskDetailRequest


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class MioCreate:
    """The MioCreate Face Swap API client.

    Credentials come from the arguments, else from ``MIOCREATE_TOKEN`` or
    ``MIOCREATE_CLIENT_ID``/``MIOCREATE_CLIENT_SECRET``; the base URL from ``base_url``, else
    ``MIOCREATE_BASE_URL``. Use it as an async context manager, or call ``aclose()``.
    ``rate_limit`` paces requests: a number of requests a second, or a ``Limiter`` (anything
    with ``async acquire()``, such as a limiter shared by many processes). ``fairness`` sets
    per-key limits and priority lanes for apps serving many users (see ``Fairness``).

    The swap methods share two keyword arguments: ``hd=True`` asks the service for its
    high-quality mode (the API's ``is_hd``: sent as 1, else 2), and ``timeout`` is how many
    seconds to wait for the task before ``TaskTimeoutError`` (the task itself goes on).
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        token: str | None = None,
        base_url: str | None = None,
        config: Config | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: float | Limiter | None = None,
        fairness: Fairness | None = None,
    ) -> None:
        overrides: dict[str, Any] = {}
        if base_url is not None:
            overrides["base_url"] = base_url
        if timeout is not None:
            overrides["timeout"] = timeout
        if retry is not None:
            overrides["retry"] = retry
        limiter = None
        if isinstance(rate_limit, (int, float)):
            overrides["rate_limit"] = rate_limit
        elif rate_limit is not None:
            limiter = rate_limit
        if config is None:
            config = Config.from_env(**overrides)
        elif overrides:
            config = attrs.evolve(config, **overrides)
        self.config = config
        if "structure" not in globals():
            _load_calls()
        log_from_env()
        auth = self._make_auth(client_id, client_secret, token)
        #: Connection failures in a row, reported by the session; a batch's breaker reads it.
        self._failures = ConnectionFailures()
        self._session = Session(config, auth, session, limiter, self._failures)
        self._transfers = anyio.CapacityLimiter(config.max_concurrent_transfers)
        self._state = _State.UNOPENED
        #: How long each kind of task takes, learnt by the batch poller, kept across batches.
        self._poll_learnt: Learnt = {}
        #: Per-key limits and priority lanes, shared by every job of this client.
        self._scheduler = Scheduler(fairness)

    def _make_auth(
        self, client_id: str | None, client_secret: str | None, token: str | None
    ) -> Auth:
        if client_id is None and client_secret is None and token is None:
            env = Environment.read()
            token = env.token
            if token is None:
                client_id, client_secret = env.client_id, env.client_secret
        if token is not None:
            return StaticTokenAuth(token)
        if client_id and client_secret:
            return ClientCredentialsAuth(
                client_id,
                client_secret,
                self._exchange_token,
                refresh_margin=self.config.token_refresh_margin,
            )
        raise ConfigurationError(
            "no credentials: pass token=, or client_id= and client_secret=, or set "
            "MIOCREATE_TOKEN or MIOCREATE_CLIENT_ID and MIOCREATE_CLIENT_SECRET"
        )

    async def _call(
        self,
        endpoint: Endpoint[Q, A],
        request: Q,
        *,
        authenticated: bool = True,
        in_query: bool = False,
        send_by: float | None = None,
        retry_until: float | None = None,
        stop_retries: Callable[[], bool] | None = None,
    ) -> tuple[A, str | None]:
        """Send ``request`` as ``endpoint`` says, and return its typed reply and the reply's
        request id: the one place where the client turns models into JSON and back
        (``in_query``: as ``GET`` and ``?``)."""
        body = unstructure(request)
        if in_query:
            params = {name: str(value) for name, value in body.items()}
            data, request_id = await self._session.call(
                endpoint.operation, method="GET", params=params, authenticated=authenticated
            )
        else:
            data, request_id = await self._session.call(
                endpoint.operation,
                body,
                authenticated=authenticated,
                send_by=send_by,
                retry_until=retry_until,
                stop_retries=stop_retries,
            )
        try:
            return structure(data, endpoint.reply), request_id
        except ProtocolError as error:
            if not endpoint.operation.creates_task:
                raise
            # The request reached the server and was answered 200: a task may well exist.
            raise SubmissionUncertainError.of(error, endpoint.operation.value) from error

    async def _exchange_token(self, request: TokenRequest) -> Token:
        token: Token
        token, _ = await self._call(Operation.TOKEN.endpoint, request, authenticated=False)
        return token

    # --- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> MioCreate:
        if self._state is _State.CLOSED:
            raise ClientClosedError("the client is closed; create a new MioCreate")
        if self._state is _State.OPENED:
            raise RuntimeError("this MioCreate is already open; enter it once")
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's connections (a session passed in stays open). Safe to repeat."""
        self._state = _State.CLOSED
        with anyio.CancelScope(shield=True):
            await self._session.aclose()

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    def __repr__(self) -> str:
        auth = self._session.auth
        credential = (
            f"client_id={auth.client_id!r}"
            if isinstance(auth, ClientCredentialsAuth)
            else f"token={REDACTED!r}"
        )
        return f"MioCreate(base_url={self.config.base_url!r}, {credential}, {self._state.value})"

    def _call_ready(self) -> None:
        if self._state is _State.CLOSED:
            raise ClientClosedError("the client is closed; create a new MioCreate")

    # --- storage --------------------------------------------------------------------------------

    @_public
    async def get_upload_url(self, file_name: str) -> UploadTarget:
        """A presigned URL to PUT a file to, and the key that will name it."""
        self._call_ready()
        _check_key(file_name, "file_name")
        from ._wire import UploadUrlRequest  # request bodies load on first use

        target: UploadTarget
        target, _ = await self._call(
            Operation.UPLOAD_URL.endpoint, UploadUrlRequest(file_name=file_name)
        )
        return target

    @_public
    async def upload(
        self,
        source: UploadSource,
        *,
        file_name: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Key:
        """Check the file locally, then stream it to storage in one PUT; returns its key."""
        self._call_ready()
        from ._transfer._url import prepare_source

        prepared = await prepare_source(
            source,
            file_name=file_name,
            stall_timeout=self.config.stall_timeout,
            config=self.config,
        )
        return await self._put(prepared, progress)

    async def _put(self, prepared: PreparedUpload, progress: ProgressCallback | None) -> Key:
        from ._transfer._inputs import Key
        from ._transfer._put import put_object

        with self._session.guard(), span("miocreate.upload", bytes=prepared.size):
            key = await put_object(
                self._session.http(),
                prepared,
                get_target=lambda: self.get_upload_url(prepared.file_name),
                config=self.config,
                limiter=self._transfers,
                progress=progress,
            )
        count("miocreate.transfer.bytes", prepared.size, direction="up")
        return Key(key)

    @_public
    async def get_access_url(self, key: str) -> str:
        """A signed URL to read a stored object."""
        self._call_ready()
        _check_key(key)
        from ._wire import AccessUrlRequest

        data: AccessUrlData
        data, _ = await self._call(Operation.ACCESS_URL.endpoint, AccessUrlRequest(key))
        return data.url

    @_public
    async def download(
        self,
        url: str,
        destination: str | PathLike[str] = ".",
        *,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
        default_name: str | None = None,
        expected_size: int | None = None,
    ) -> Path:
        """Stream a signed URL (a result's, say) to a file; complete or not there at all.

        ``expected_size`` (a result's ``size``) checks a reply that does not give its length.
        """
        self._call_ready()
        from ._transfer._get import download

        name = default_name or _name_in_url(url)
        with self._session.guard(), span("miocreate.download"):
            path = await download(
                self._session.http(),
                url,
                destination,
                default_name=name,
                overwrite=overwrite,
                config=self.config,
                limiter=self._transfers,
                progress=progress,
                expected_size=expected_size,
            )
        size = (await anyio.Path(path).stat()).st_size
        count("miocreate.transfer.bytes", size, direction="down")
        return path

    # --- task creation --------------------------------------------------------------------------

    async def _create(
        self,
        kind: TaskKind,
        request: object,
        send_by: float | None = None,
        retry_until: float | None = None,
        stop_retries: Callable[[], bool] | None = None,
    ) -> TaskHandle[Any]:
        self._call_ready()
        endpoint = Operation.creating(kind).endpoint
        created: TaskCreated
        with span("miocreate.create", kind=kind.value) as current:
            created, request_id = await self._call(
                endpoint,
                request,
                send_by=send_by,
                retry_until=retry_until,
                stop_retries=stop_retries,
            )
            current.set("task_id", created.task_id)
        return TaskHandle(created.task_id, kind, request_id)

    @_public
    async def create_image_swap(
        self,
        image_key: str,
        face_key: str,
        *,
        hd: bool = False,
        send_by: float | None = None,
        retry_until: float | None = None,
        stop_retries: Callable[[], bool] | None = None,
    ) -> TaskHandle[ImageSwapResult]:
        """Put the face of ``face_key`` into the image of ``image_key``.

        ``send_by`` (a ``time.monotonic()`` moment): past it, checked just before the request
        goes out, nothing is sent (``NotSentError``); a worker passes its lease's end.
        ``retry_until`` (an ``anyio.current_time()`` moment): refusals that created nothing
        (802, 429, no connection) are not retried past it; a batch passes its job's deadline.
        ``stop_retries``: asked before each retry of such a refusal; once it returns True the
        refusal is raised at once (a batch passes its circuit breaker: the service is down)."""
        from ._wire import FaceSwapRequest

        request = FaceSwapRequest(
            main_key=_check_key(image_key, "image_key"),
            target_key=_check_key(face_key, "face_key"),
            is_hd=_hd(hd),
        )
        return await self._create(TaskKind.IMAGE_SWAP, request, send_by, retry_until, stop_retries)

    @_public
    async def create_video_swap(
        self,
        video_key: str,
        face_key: str,
        *,
        hd: bool = False,
        send_by: float | None = None,
        retry_until: float | None = None,
        stop_retries: Callable[[], bool] | None = None,
    ) -> TaskHandle[VideoSwapResult]:
        """Put the face of ``face_key`` into the video of ``video_key`` (``send_by``,
        ``retry_until`` and ``stop_retries``: as for ``create_image_swap``)."""
        from ._wire import FaceSwapRequest

        request = FaceSwapRequest(
            main_key=_check_key(video_key, "video_key"),
            target_key=_check_key(face_key, "face_key"),
            is_hd=_hd(hd),
        )
        return await self._create(TaskKind.VIDEO_SWAP, request, send_by, retry_until, stop_retries)

    @_public
    async def create_face_detection(self, media_key: str) -> TaskHandle[list[DetectedFace]]:
        """Find the faces of an image or video, for a multiple-face swap."""
        from ._wire import FaceDetectionRequest

        request = FaceDetectionRequest(main_key=_check_key(media_key, "media_key"))
        return await self._create(TaskKind.FACE_DETECTION, request)

    @_public
    async def create_multi_image_swap(
        self,
        detection: TaskRef,
        faces: Mapping[DetectedFace | str, str],
        *,
        hd: bool = False,
    ) -> TaskHandle[ImageSwapResult]:
        """Swap several faces of a detected image: {detected face or its key: new face key}."""
        request = _multi_request(detection, faces, hd)
        return await self._create(TaskKind.MULTI_IMAGE_SWAP, request)

    @_public
    async def create_multi_video_swap(
        self,
        detection: TaskRef,
        faces: Mapping[DetectedFace | str, str],
        *,
        hd: bool = False,
    ) -> TaskHandle[VideoSwapResult]:
        """Swap several faces of a detected video: {detected face or its key: new face key}."""
        request = _multi_request(detection, faces, hd)
        return await self._create(TaskKind.MULTI_VIDEO_SWAP, request)

    # --- tasks ----------------------------------------------------------------------------------

    @overload
    async def get_task(self, /, task: TaskHandle[R]) -> TaskInfo[R]: ...
    @overload
    async def get_task(self, /, task: int | str) -> TaskInfo[TaskResult]: ...
    @_public
    async def get_task(self, task: TaskRef) -> TaskInfo[Any]:
        """The task's status and message, with its typed result once it succeeded."""
        self._call_ready()
        task_id, kind = _task_ref(task)
        count("miocreate.poll.requests")
        detail, request_id = await self._call(
            Operation.TASK_DETAIL.endpoint,
            TaskDetailRequest(id=task_id),
            in_query=self.config.task_detail_method == "GET",
        )
        status = TaskStatus.from_code(detail.status)
        result = None
        if status is TaskStatus.SUCCEEDED:
            result = self._result(detail.additional_data, kind, task_id, request_id)
        # id, status, status_code, message, kind, result, request_id (by position: half the cost)
        return TaskInfo(task_id, status, detail.status, detail.message, kind, result, request_id)

    @overload
    async def wait(self, task: TaskHandle[R], *, timeout: float = ...) -> R: ...
    @overload
    async def wait(self, task: int | str, *, timeout: float = ...) -> TaskResult: ...
    async def wait(self, task: TaskRef, *, timeout: float = IMAGE_TIMEOUT) -> Any:
        """Poll until the task ends: its typed result, or TaskFailedError (for a documented
        code, also that code's class: 602 is a NoFaceDetectedError).

        Polls soon, then slower up to ``config.poll.maximum``. Past ``timeout`` seconds it raises
        TaskTimeoutError; the task itself goes on and can be waited for again.
        """
        info: TaskInfo[Any] = await self._wait(task, timeout=check_timeout(timeout))
        return info.result

    @_public
    async def _wait(self, task: TaskRef, *, timeout: float) -> Any:
        task_id, _ = _task_ref(task)
        schedule = self.config.poll
        polls = 0
        # Guarded: aclose() from another task ends the wait at once, sleeping or not.
        waiting = span("miocreate.wait", task_id=task_id)
        with self._session.guard(), waiting, anyio.move_on_after(timeout) as scope:
            while True:
                info = await self.get_task(task)
                if info.succeeded:
                    return info
                if info.failed:
                    # With a documented code, also that code's class (602: NoFaceDetectedError).
                    raise task_failed_error(
                        info.status_code,
                        info.message,
                        task_id=task_id,
                        request_id=info.request_id,
                    )
                await anyio.sleep(schedule.delay(polls))
                polls += 1
        assert scope.cancel_called
        raise TaskTimeoutError(
            f"the task did not finish within {timeout:g}s; it may still finish: wait again",
            task_id=task_id,
        )

    # --- one call each for the common jobs ----------------------------------------------------

    @_public
    async def swap_image(
        self,
        image: MediaInput,
        face: MediaInput,
        *,
        hd: bool = False,
        timeout: float = IMAGE_TIMEOUT,
        key: str | None = None,
        lane: Lane = "interactive",
    ) -> ImageSwapResult:
        """Upload the image and the face (concurrently), swap, and wait for the result.

        ``key`` (a user of your app) puts the job under the client's per-key limits, in
        ``lane`` ("interactive" by default: before the batches' "bulk" jobs)."""
        result = await self._swap_one(
            image, face, video=False, hd=hd, timeout=timeout, key=key, lane=lane
        )
        return cast("ImageSwapResult", result)

    @_public
    async def swap_video(
        self,
        video: MediaInput,
        face: MediaInput,
        *,
        hd: bool = False,
        timeout: float = VIDEO_TIMEOUT,
        key: str | None = None,
        lane: Lane = "interactive",
    ) -> VideoSwapResult:
        """Upload the video and the face (concurrently), swap, and wait for the result.

        ``key`` (a user of your app) puts the job under the client's per-key limits, in
        ``lane`` ("interactive" by default: before the batches' "bulk" jobs)."""
        result = await self._swap_one(
            video, face, video=True, hd=hd, timeout=timeout, key=key, lane=lane
        )
        return cast("VideoSwapResult", result)

    async def _swap_one(
        self,
        media: MediaInput,
        face: MediaInput,
        *,
        video: bool,
        hd: bool,
        timeout: float,
        key: str | None,
        lane: Lane,
    ) -> ImageSwapResult | VideoSwapResult:
        """``swap_image`` or ``swap_video``: the inputs checked, uploaded concurrently, swapped
        by the runner; a cancellation once the task exists names it (``SwapInterrupted``)."""
        check_timeout(timeout)
        _hd(hd)
        key, lane = check_key(key), check_lane(lane)
        kind = "video" if video else "image"
        wanted: list[Wanted] = [(media, video, kind), (face, False, "face")]
        created: list[int] = []
        with span("miocreate.job", kind=kind), _naming_the_task(created, f"swap_{kind}"):
            return await self._swap_once(
                lambda: self._keys(wanted),
                video=video,
                hd=hd,
                timeout=timeout,
                key=key,
                lane=lane,
                created=created.append,
            )

    async def _swap_once(
        self,
        keys: Callable[[], Awaitable[list[str]]],
        *,
        video: bool,
        hd: bool,
        timeout: float,
        key: str | None = None,
        lane: Lane = "interactive",
        created: Callable[[int], object] | None = None,
    ) -> ImageSwapResult | VideoSwapResult:
        """A one-call swap (``swap_image``, ``swap_video``, ``miocreate swap``) run by the job
        runner, with nothing durable: ``keys`` uploads the media and the face; refusals are the
        session's to retry; the wait counts ``timeout`` from the task's creation; ``created``
        hears the task id as soon as the task exists (to name it if the job is interrupted)."""
        # Loaded here: the runner sits above the client (pyproject's import contracts).
        from ._runner import Inputs, Runner

        async def upload() -> Inputs:
            media_key, face_key = await keys()
            return Inputs(media_key, face_key, video)

        async def watch(task: TaskHandle[Any]) -> TaskInfo[Any]:
            info: TaskInfo[Any] = await self._wait(task, timeout=timeout)
            return info

        steps = _OneCall(self._scheduler, key, lane, timeout, created)
        try:
            runner = Runner(
                steps,
                self,
                self.config.retry,
                upload,
                watch,
                deadline=math.inf,  # the wait keeps its own (watch_bounded)
                hd=hd,
                retries_until_deadline=False,
                retry_refusals=False,
                watch_bounded=True,
            )
            outcome = await runner.run()
        finally:
            if steps.turn is not None:
                self._scheduler.release(steps.turn)  # spent or not, as its steps said
        if isinstance(outcome, MioCreateError):
            raise outcome
        return outcome

    @_public
    async def detect_faces(
        self, media: MediaInput, *, timeout: float = IMAGE_TIMEOUT
    ) -> list[DetectedFace]:
        """Upload an image or video and list its faces (each usable as a ``swap_faces`` key)."""
        check_timeout(timeout)
        (key,) = await self._keys([(media, None, "media")])
        task = await self.create_face_detection(key)
        return await self.wait(task, timeout=timeout)

    @_public
    async def swap_faces(
        self,
        media: MediaInput,
        faces: Mapping[DetectedFace | str, MediaInput],
        *,
        detection: TaskRef | None = None,
        hd: bool = False,
        timeout: float = VIDEO_TIMEOUT,
    ) -> ImageSwapResult | VideoSwapResult:
        """Swap several faces found by ``detect_faces``: {detected face: new face}.

        ``media`` is the image or video the faces were detected in (it is not uploaded again;
        it tells an image swap from a video swap). Faces given by key need ``detection=``.
        """
        if not faces:
            raise InvalidInputError("swap_faces needs at least one face to swap")
        check_timeout(timeout)
        _hd(hd)
        is_video = _is_video(media)
        new_keys = await self._keys([(face, False, "face") for face in faces.values()])
        mapping = dict(zip(faces.keys(), new_keys, strict=False))
        ref: TaskRef = detection if detection is not None else _detection_of(faces.keys())
        if is_video:
            video_task = await self.create_multi_video_swap(ref, mapping, hd=hd)
            return await self.wait(video_task, timeout=timeout)
        image_task = await self.create_multi_image_swap(ref, mapping, hd=hd)
        return await self.wait(image_task, timeout=timeout)

    def swap_many(
        self,
        jobs: Jobs,
        *,
        concurrency: int = 16,
        fail_fast: bool = False,
        timeout: float | None = None,
        max_submissions: int = 8,
        poll: PollPolicy | None = None,
        upload_cache_size: int = 1024,
        journal: str | PathLike[str] | Journal | None = None,
        resubmit_uncertain: bool = False,
        events: Callable[[BatchEvent], object] | None = None,
        unreachable_after: int = 10,
        max_tasks: int | None = None,
        lane: Lane = "bulk",
    ) -> SwapResults:
        """Run many swaps at once; outcomes come as they finish.

        ::

            jobs = [SwapJob(image="a.jpg", face="me.jpg"), SwapJob(image="b.mp4", face="me.jpg")]
            async with mc.swap_many(jobs, concurrency=50) as results:
                async for outcome in results:      # completion order, one per job
                    print(outcome.job, outcome.task_id, outcome.result or outcome.error)

        ``jobs`` (``SwapJob`` items, an iterable or async iterable) are read lazily. At most
        ``concurrency`` jobs are in progress at once (uploading, creating or waiting); uploads
        share the client's transfer limit, at most ``max_submissions`` creation requests are in
        flight, and one poller watches every task (``poll`` tunes it). A source used by several
        jobs (the face) is uploaded once. ``timeout`` is each job's deadline in seconds (default
        ``IMAGE_TIMEOUT``, 600, for images; ``VIDEO_TIMEOUT``, 1800, for videos).

        ``events``, if given, is called (in the batch's tasks; keep it quick) with each
        ``UploadProgress``, ``TaskCreated``, ``TaskPolled`` and ``JobDone``: enough to draw
        progress bars.

        A failed job is an outcome whose ``error`` is the typed error; with ``fail_fast`` the
        iteration raises the first one instead. Credits running out (801) stops submissions:
        the jobs not yet submitted end with InsufficientCreditsError. After ``unreachable_after``
        connection failures in a row with no reply between them (the service is down), the
        batch stops too: the jobs not yet submitted end with ServiceUnreachableError at once,
        and tasks already created are still waited for. Leaving the ``async with``
        block ends all work at once; ``results.pending_tasks()`` then lists the tasks created
        whose outcome was not handed out, to collect with ``wait()``.

        ``journal`` (a path, or a ``Journal``) records every job's progress durably: running
        the same jobs again resumes, without paying twice (see the guide "Resuming a batch",
        ``docs/guides/resuming.md``).
        A job whose creation request may have reached the service without an answer is
        "uncertain": it is re-sent only with ``resubmit_uncertain=True`` (which may pay twice).

        ``max_tasks`` caps the creations sent (uncertain ones count): once it is used up, the
        remaining jobs end with ``TaskBudgetError`` and stay to do (a journaled batch run again
        with a larger budget does them). Each job's ``SwapJob(key=...)`` puts it under the
        client's per-key limits, in ``lane`` ("bulk" by default: after one-call jobs).
        ``estimate(jobs)`` tells what a batch will cost before it runs.
        """
        from ._batch import SwapOptions, swap_many

        options = SwapOptions(
            concurrency=concurrency,
            fail_fast=fail_fast,
            timeout=timeout,
            max_submissions=max_submissions,
            poll=poll,
            upload_cache_size=upload_cache_size,
            journal=journal,
            resubmit_uncertain=resubmit_uncertain,
            events=events,
            unreachable_after=unreachable_after,
            max_tasks=max_tasks,
            lane=lane,
        )
        return swap_many(
            self,
            jobs,
            options,
            put=self._put,
            client_id=getattr(self._session.auth, "client_id", None),
            learnt=self._poll_learnt,
            failures=self._failures,
            scheduler=self._scheduler,
        )

    async def estimate(
        self,
        jobs: Iterable[SwapJob],
        *,
        prices: Prices | None = None,
        journal: str | PathLike[str] | None = None,
        concurrency: int = 16,
        max_tasks: int | None = None,
        resubmit_uncertain: bool = False,
    ) -> Estimate:
        """What ``swap_many(jobs, ...)`` would cost, with nothing uploaded or created.

        Jobs by kind, seconds of video (read from local MP4 files), what ``journal`` (a path)
        says is done already, the credits by ``prices`` (default ``Prices.from_env()``: each
        price unknown until you set it) and the tasks' time from the durations this client
        learnt. See the guide "Spend and fairness".
        """
        from ._estimate import estimate_jobs

        return await estimate_jobs(
            jobs,
            prices=prices,
            journal=journal,
            concurrency=concurrency,
            max_tasks=max_tasks,
            resubmit_uncertain=resubmit_uncertain,
            learnt=self._poll_learnt,
        )

    def allowance_left(self, key: str) -> int | None:
        """Creations ``key`` may still send under the client's ``Fairness`` (None: no
        allowance)."""
        return self._scheduler.remaining(key)

    # --- helpers --------------------------------------------------------------------------------

    async def _keys(self, inputs: list[Wanted]) -> list[str]:
        """Keys for the inputs, uploading those that are not keys yet, concurrently (each
        distinct one once). Every input is checked first: a bad face costs no image upload."""
        return await self._upload_cache().keys_of(inputs)

    def _upload_cache(self, progress: ProgressFor | None = None) -> UploadCache:
        """Uploads through this client, each distinct source once (the CLI's bars use
        ``progress``)."""
        from ._transfer._cache import UploadCache

        return UploadCache(
            self._put,
            progress=progress,
            stall_timeout=self.config.stall_timeout,
            config=self.config,
        )

    def _result(
        self, data: Any, kind: TaskKind | None, task_id: int, request_id: str | None = None
    ) -> TaskResult:
        """The typed result, with what the wire lacks: expiry and the downloader, or the
        detection task of faces."""
        if kind is TaskKind.FACE_DETECTION or isinstance(data, list):
            return structure_result(data, kind, task_id=task_id)
        url = data.get("merge_url") if isinstance(data, (dict, Mapping)) else None
        expires = url_expiry(url) if isinstance(url, str) else None
        if expires is not None and expires - _now() < _DAY:
            count("miocreate.results.expiring")
        return structure_result(
            data,
            kind,
            expires_at=expires or _now() + self.config.result_ttl,
            request_id=request_id,
            downloader=self.download,
            streamer=self._stream,
        )

    async def _stream(
        self, url: str, chunk_size: int, *, max_bytes: int | None = None, size: int | None = None
    ) -> AsyncIterator[bytes]:
        """A result's chunks (``result.iter_bytes()``/``read()``); with ``max_bytes``, a result
        of a larger ``size`` is refused before any request, and one that sends more fails."""
        self._call_ready()
        from ._transfer._get import stream

        if max_bytes is not None and size is not None and size > max_bytes:
            raise ResultTooLargeError(
                f"the result is {size} bytes, over read()'s max_bytes={max_bytes}: use "
                "iter_bytes() or download()",
                operation="read",
            )
        chunks = stream(
            self._session.http(),
            url,
            chunk_size=chunk_size,
            config=self.config,
            max_bytes=max_bytes,
        )
        async with aclosing(chunks):  # released when the caller stops, not when collected
            async for chunk in chunks:
                yield chunk


def _is_video(media: MediaInput) -> bool:
    name: str | None = None
    if isinstance(media, (str, PathLike)):
        name = os.fspath(media)
    elif hasattr(media, "file_name"):
        name = str(media.file_name)
    video = is_video_name(name) if name else None
    if video is None:
        raise InvalidInputError(
            "cannot tell whether the media is an image or a video: pass its path or key "
            "with its extension"
        )
    return video


def _task_ref(task: TaskRef) -> tuple[int, TaskKind | None]:
    if isinstance(task, TaskHandle):
        return task.id, task.kind
    if isinstance(task, bool):
        raise InvalidInputError(f"not a task id: {task!r}")
    if isinstance(task, int):
        return task, None
    if isinstance(task, str) and task.strip().isdigit():
        return int(task), None
    raise InvalidInputError(f"not a task id: {task!r}")


def _detection_of(faces: Any) -> int:
    ids = {face.task_id for face in faces if isinstance(face, DetectedFace)}
    if len(ids) != 1 or None in ids:
        raise InvalidInputError(
            "the faces must all come from one detect_faces() call; or pass detection="
        )
    (task_id,) = ids
    assert task_id is not None
    return task_id


def _multi_request(
    detection: TaskRef, faces: Mapping[DetectedFace | str, str], hd: bool
) -> MultiFaceSwapRequest:
    if not faces:
        raise InvalidInputError("a multiple-face swap needs at least one face")
    detection_id, kind = _task_ref(detection)
    if kind is not None and kind is not TaskKind.FACE_DETECTION:
        raise InvalidInputError(f"task {detection_id} is a {kind.value}, not a face detection")
    pairs = tuple(
        FacePair(
            target_part_key=_check_key(
                face.avatar_part_key if isinstance(face, DetectedFace) else face, "detected face"
            ),
            avatar_part_key=_check_key(new_face, "new face key"),
        )
        for face, new_face in faces.items()
    )
    from ._wire import MultiFaceSwapRequest

    return MultiFaceSwapRequest(avatar_key=pairs, get_face_id=detection_id, is_hd=_hd(hd))


def _name_in_url(url: str) -> str:
    """The file name a URL's path ends with, decoded (``photo%20(1).jpg``: ``photo (1).jpg``);
    separators it decodes to are replaced, so that it stays one name in the chosen folder."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = name.replace("/", "_").replace("\\", "_").replace("\0", "_").strip()
    return name if name not in ("", ".", "..") else "download"


def _check_key(key: object, what: str = "key") -> str:
    """A key (or file name) as the API takes it: a non-empty string, checked before a request."""
    if not isinstance(key, str) or not key.strip() or "\0" in key:
        raise InvalidInputError(f"{what} must be a non-empty string, got {key!r}")
    return key


def _hd(hd: object) -> Hd:
    """``hd`` is a bool (or an ``Hd``): "no" is no False, and HD costs more."""
    if not isinstance(hd, (bool, Hd)):
        raise InvalidInputError(f"hd must be True or False, got {hd!r}")
    return Hd.of(hd)


#: Results fetched with less than this left before their URLs expire are counted (telemetry).
_DAY = timedelta(days=1)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@attrs.define(eq=False)
class _OneCall:
    """A one-call job's steps for the runner: nothing durable. Once the inputs are uploaded it
    takes the job's turn from the client's scheduler (until the job ends); the creation counts
    against the key's allowance unless it was refused with nothing created (an uncertain or
    cancelled one counts: it may be paid); the task id goes to ``on_created`` (where
    ``SwapInterrupted`` gets it)."""

    scheduler: Scheduler
    key: str | None
    lane: Lane
    timeout: float
    #: Hears the task id as soon as the task exists.
    on_created: Callable[[int], object] | None = None
    turn: Turn | None = None
    task_id: int | None = None

    async def begin(self) -> None:
        # A key whose allowance is used up is refused before its uploads (no bandwidth spent).
        refusal = self.scheduler.refusal(self.key)
        if refusal is not None:
            raise refusal

    async def uploaded(self) -> None:
        deadline = anyio.current_time() + self.timeout
        self.turn = await self.scheduler.acquire(self.key, self.lane, deadline=deadline)

    async def intent(self, kind: str) -> float | None:
        assert self.turn is not None
        self.turn.spent = True
        return None

    async def created(self, task: TaskHandle[Any]) -> None:
        self.task_id = task.id
        if self.on_created is not None:
            self.on_created(task.id)

    async def refused(self, error: MioCreateError) -> None:
        self._not_spent()

    async def uncertain(self, error: SubmissionUncertainError | None) -> None:
        pass  # a task may exist: the turn stays spent

    async def succeeded(self, result: R) -> R:
        return result

    async def ended(self, error: MioCreateError) -> None:
        # Any error of the creation but a doubt created nothing (as all errors before it).
        if self.task_id is None and not isinstance(error, SubmissionUncertainError):
            self._not_spent()

    def _not_spent(self) -> None:
        if self.turn is not None:
            self.turn.spent = False


@contextlib.contextmanager
def _naming_the_task(created: list[int], operation: str) -> Iterator[None]:
    """A cancellation (or Ctrl-C) of a swap whose task exists goes on as itself, with a
    ``SwapInterrupted`` naming the paid task as its cause, a note, and a warning."""
    try:
        yield
    except Exception:
        raise
    except BaseException as interruption:
        if not created:
            raise
        (task_id,) = created
        interrupted = SwapInterrupted(
            f"{operation} was interrupted after task {task_id} was created: it is paid for and "
            f"may still finish; collect it with `await client.wait({task_id})` or "
            f"`miocreate task {task_id} --wait -o FILE`",
            operation=operation,
            task_id=task_id,
        )
        logger.warning("%s", interrupted.message)
        if hasattr(interruption, "add_note"):  # Python 3.11+
            interruption.add_note(interrupted.message)
        raise interruption from interrupted
