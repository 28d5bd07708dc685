"""A FastAPI endpoint that swaps a face into an uploaded photo.

One MioCreate client is opened in the app's lifespan and shared by every request (it holds one
connection pool and one token). Settings come from the environment, so the same app runs
against the service or the local emulator:

    python -m miocreate_async.emulator --port 8765 &
    export MIOCREATE_BASE_URL=http://127.0.0.1:8765
    export MIOCREATE_CLIENT_ID=emulator-client-id MIOCREATE_CLIENT_SECRET=emulator-client-secret
    uvicorn --app-dir examples fastapi_app:app
    curl -F photo=@photo.jpg -F face=@face.png -o swapped.jpg http://127.0.0.1:8000/swap

``POST /swap`` answers the swapped image itself, streamed from storage as it arrives (no
temporary file); ``POST /swap/url`` answers JSON with the result's signed URL (valid 7 days)
instead, which costs the server no download. A photo without a face (``NoFaceDetectedError``,
code 602, also a ``TaskFailedError``) and any other failed task answer 422. A file the service
would refuse answers 400 naming it ("the face file 'x.txt' ..."); a request over
``MAX_UPLOAD_MB`` (default 20) answers 413 as soon as that much arrived (or at once, by its
``Content-Length``), never read in full.
Needs: pip install 'miocreate-async' fastapi python-multipart uvicorn
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, BinaryIO, cast

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miocreate_async import (
    ContentPolicyError,
    ImageSwapResult,
    InsufficientCreditsError,
    InvalidInputError,
    MioCreate,
    MioCreateError,
    MultipleFacesError,
    NoFaceDetectedError,
    RequestQuotaError,
    TaskFailedError,
)

__all__ = ["BodyLimit", "app", "create_app", "swap_uploaded"]

#: The largest request taken, photo and face together.
MAX_UPLOAD_BYTES = int(float(os.environ.get("MAX_UPLOAD_MB", "20")) * 1024 * 1024)


async def swap_uploaded(
    client: MioCreate, photo: BinaryIO, face: BinaryIO, *, hd: bool = False
) -> ImageSwapResult:
    """The whole job, free of FastAPI: both files are streamed to storage concurrently.

    A file the service would refuse raises ``InvalidInputError`` naming it ("the face file
    'x.txt' ..."), by the name its sender gave (a file object's ``name``), before any upload.
    """
    try:
        return await client.swap_image(photo, face, hd=hd, timeout=120)
    except InvalidInputError as error:
        for role, file in (("photo", photo), ("face", face)):
            name = getattr(file, "name", None)
            if isinstance(name, str) and repr(name) in error.message:
                raise type(error)(
                    f"the {role} file {name!r} was refused: {error.message}"
                ) from error
        raise


class _Named:
    """An uploaded file with the name its sender gave, so that errors can name it."""

    def __init__(self, upload: UploadFile) -> None:
        self._file = upload.file
        self.name = os.path.basename(upload.filename or "") or "upload"

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


def _named(upload: UploadFile) -> BinaryIO:
    return cast(BinaryIO, _Named(upload))


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` answers 413 as soon as that much
    arrived (at once when its ``Content-Length`` says so): a 600 MB upload is never read in
    full, nor spooled to disk by the form parser."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"").decode()
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        refused = False

        async def limited() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not refused:
                        refused = True
                        await self._refuse(send)
                    return {"type": "http.disconnect"}  # the app stops reading
            return message

        async def guarded(message: Message) -> None:
            if not refused:  # the 413 went already: whatever the app answers is dropped
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {
                "error": "FileTooLargeError",
                "code": None,
                "message": f"the upload is over {self.max_bytes // (1024 * 1024)} MB",
            },
            status_code=413,
        )
        body: dict[str, Any] = {"type": "http.response.body", "body": response.body}
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send(body)


def _status_of(error: MioCreateError) -> int:
    """How the API's errors map to HTTP: the caller's fault, the quota, or our upstream's."""
    # A failed task (no face: NoFaceDetectedError, 602, is one) is about the pictures sent.
    if isinstance(
        error, (NoFaceDetectedError, MultipleFacesError, ContentPolicyError, TaskFailedError)
    ):
        return 422
    if isinstance(error, InvalidInputError):
        return 400
    if isinstance(error, (RequestQuotaError, InsufficientCreditsError)):
        return 503
    return 502


def get_client(request: Request) -> MioCreate:
    """The client the lifespan opened, for a request."""
    client: MioCreate = request.app.state.miocreate
    return client


Client = Annotated[MioCreate, Depends(get_client)]
Photo = Annotated[UploadFile, File(description="the photo to edit (JPG, PNG, WEBP, GIF)")]
Face = Annotated[UploadFile, File(description="the new face")]
Hd = Annotated[bool, Form()]


def create_app(
    make_client: Callable[[], MioCreate] = MioCreate, *, max_upload_bytes: int = MAX_UPLOAD_BYTES
) -> FastAPI:
    """The app; ``make_client`` builds the shared client when the app starts (tests pass one
    bound to an emulator; by default it is configured from the environment, so
    ``MIOCREATE_BASE_URL`` points it at another server)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with make_client() as client:
            app.state.miocreate = client
            yield

    app = FastAPI(title="Face swap", lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)

    @app.exception_handler(MioCreateError)
    async def miocreate_error(request: Request, error: MioCreateError) -> JSONResponse:
        return JSONResponse(
            {"error": type(error).__name__, "code": error.code, "message": error.message},
            status_code=_status_of(error),
        )

    @app.post("/swap", response_class=StreamingResponse)
    async def swap(client: Client, photo: Photo, face: Face, hd: Hd = False) -> StreamingResponse:
        """Swap ``face`` into ``photo``; the answer is the swapped image, streamed."""
        result = await swap_uploaded(client, _named(photo), _named(face), hd=hd)
        media_type = mimetypes.guess_type(result.merge_key)[0] or "application/octet-stream"
        # Chunks go to the caller as they come from storage: no temporary file, flat memory.
        return StreamingResponse(result.iter_bytes(), media_type=media_type)

    @app.post("/swap/url")
    async def swap_url(
        client: Client, photo: Photo, face: Face, hd: Hd = False
    ) -> dict[str, object]:
        """Swap ``face`` into ``photo``; the answer is the result's signed URL."""
        result = await swap_uploaded(client, _named(photo), _named(face), hd=hd)
        return {
            "url": result.merge_url,
            "width": result.width,
            "height": result.height,
            "expires_at": result.expires_at.isoformat() if result.expires_at else None,
        }

    return app


app = create_app()
