"""The API's private request and reply bodies: frozen, slotted attrs classes. No I/O here.

Only a call (or the emulator) needs them, so they load on the first call, not on
``import miocreate_async``: the public models, which users name, stay in ``_models``.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._models import FacePair, Hd, _url_repr
from ._redact import redact_secret

__all__ = [
    "AccessUrlData",
    "AccessUrlRequest",
    "Envelope",
    "FaceDetectionRequest",
    "FaceSwapRequest",
    "MultiFaceSwapRequest",
    "TaskCreated",
    "TaskDetail",
    "TaskDetailRequest",
    "Token",
    "TokenRequest",
    "UploadUrlRequest",
]


@attrs.frozen
class Envelope:
    """Every JSON reply: ``code`` 200 is success, anything else an error."""

    code: int
    message: str = ""
    data: Any = None


# --- auth -------------------------------------------------------------------------------------


@attrs.frozen
class TokenRequest:
    client_id: str
    client_secret: str = attrs.field(repr=redact_secret)


@attrs.frozen
class Token:
    access_token: str = attrs.field(repr=redact_secret)
    #: Seconds; a fraction, 0 or less, or NaN is read by the client as "until refused".
    expires_in: float = 3600


# --- storage ----------------------------------------------------------------------------------


@attrs.frozen
class UploadUrlRequest:
    file_name: str


@attrs.frozen
class AccessUrlRequest:
    key: str


@attrs.frozen
class AccessUrlData:
    url: str = attrs.field(repr=_url_repr)


# --- task creation ----------------------------------------------------------------------------


@attrs.frozen
class FaceSwapRequest:
    """Image or video face swap: ``main_key`` is the media edited, ``target_key`` the new face."""

    main_key: str
    target_key: str
    is_hd: Hd = Hd.OFF


@attrs.frozen
class FaceDetectionRequest:
    main_key: str


@attrs.frozen
class MultiFaceSwapRequest:
    avatar_key: tuple[FacePair, ...]
    get_face_id: int
    is_hd: Hd = Hd.OFF


@attrs.frozen
class TaskCreated:
    task_id: int


@attrs.frozen
class TaskDetailRequest:
    id: int


def _text(value: object) -> str:
    return "" if value is None else str(value)


@attrs.frozen
class TaskDetail:
    """The raw reply of Get task detail; ``additional_data`` is structured by the client."""

    id: int
    status: int
    #: A null message is no message.
    message: str = attrs.field(default="", converter=_text)
    additional_data: Any = None


# Resolve the string annotations now, while this module is their namespace.
for _cls in list(globals().values()):
    if isinstance(_cls, type) and attrs.has(_cls) and _cls.__module__ == __name__:
        attrs.resolve_types(_cls)
del _cls
