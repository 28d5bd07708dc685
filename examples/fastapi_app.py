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
code 602, also a ``TaskFailedError``) and any other failed task answer 422.
Needs: pip install 'miocreate-async' fastapi python-multipart uvicorn
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, BinaryIO

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

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

__all__ = ["app", "create_app", "swap_uploaded"]


async def swap_uploaded(
    client: MioCreate, photo: BinaryIO, face: BinaryIO, *, hd: bool = False
) -> ImageSwapResult:
    """The whole job, free of FastAPI: both files are streamed to storage concurrently."""
    return await client.swap_image(photo, face, hd=hd, timeout=120)


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


def create_app(make_client: Callable[[], MioCreate] = MioCreate) -> FastAPI:
    """The app; ``make_client`` builds the shared client when the app starts (tests pass one
    bound to an emulator; by default it is configured from the environment)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with make_client() as client:
            app.state.miocreate = client
            yield

    app = FastAPI(title="Face swap", lifespan=lifespan)

    @app.exception_handler(MioCreateError)
    async def miocreate_error(request: Request, error: MioCreateError) -> JSONResponse:
        return JSONResponse(
            {"error": type(error).__name__, "code": error.code, "message": error.message},
            status_code=_status_of(error),
        )

    @app.post("/swap", response_class=StreamingResponse)
    async def swap(client: Client, photo: Photo, face: Face, hd: Hd = False) -> StreamingResponse:
        """Swap ``face`` into ``photo``; the answer is the swapped image, streamed."""
        result = await swap_uploaded(client, photo.file, face.file, hd=hd)
        media_type = mimetypes.guess_type(result.merge_key)[0] or "application/octet-stream"
        # Chunks go to the caller as they come from storage: no temporary file, flat memory.
        return StreamingResponse(result.iter_bytes(), media_type=media_type)

    @app.post("/swap/url")
    async def swap_url(
        client: Client, photo: Photo, face: Face, hd: Hd = False
    ) -> dict[str, object]:
        """Swap ``face`` into ``photo``; the answer is the result's signed URL."""
        result = await swap_uploaded(client, photo.file, face.file, hd=hd)
        return {
            "url": result.merge_url,
            "width": result.width,
            "height": result.height,
            "expires_at": result.expires_at.isoformat() if result.expires_at else None,
        }

    return app


app = create_app()
