"""Uploads once per source: one source used by many jobs (the face, say) is uploaded once.

Single-flight: while a source uploads, others asking for it wait for that upload instead of
starting their own. Paths are known by their absolute path, bytes by their value, other sources
(files, bytearrays, streams) by identity. At most ``size`` finished uploads are remembered (the
least recently used are forgotten), so memory stays flat over any number of jobs.
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

import anyio
import attrs

from .._errors import MioCreateError, UnsupportedFormatError
from .._formats import MediaType
from .._models import ProgressCallback
from .._retry import is_transient
from ._inputs import PreparedUpload, UploadSource, as_key, prepare_upload

__all__ = ["Put", "UploadCache"]

#: Sends a checked upload to storage and returns its key (the client's streamed PUT).
Put = Callable[[PreparedUpload, ProgressCallback | None], Awaitable[str]]


@attrs.define(eq=False)
class _Upload:
    #: Held so that an identity key (``id()``) stays unique while the entry lives.
    source: object
    done: anyio.Event = attrs.Factory(anyio.Event)
    key: str | None = None
    media: MediaType | None = None
    error: MioCreateError | None = None


class UploadCache:
    """``await cache.key_of(source)``: the source's key, uploading it once for all callers."""

    def __init__(self, put: Put, size: int) -> None:
        self._put = put
        self._size = size
        self._entries: OrderedDict[Hashable, _Upload] = OrderedDict()
        #: Uploads made, and requests answered by an upload made or under way.
        self.uploads = 0
        self.hits = 0

    async def key_of(
        self, source: UploadSource, *, video: bool | None, role: str
    ) -> tuple[str, MediaType | None]:
        """The key of ``source`` and its media type (None for a key given as is)."""
        key = as_key(source)
        if key is not None:
            return key, None
        identity = _identity(source)
        while True:
            entry = self._entries.get(identity)
            if entry is None:
                break
            self._entries.move_to_end(identity)
            self.hits += 1
            await entry.done.wait()
            if entry.key is not None:
                return entry.key, _checked_media(entry.media, video, role)
            if entry.error is not None:
                raise copy.copy(entry.error)
            # Its uploader was cancelled: the next in line uploads.
        entry = _Upload(source)
        self._entries[identity] = entry
        self._forget_old()
        try:
            prepared = await prepare_upload(source)
            entry.media = prepared.media_type
            _checked_media(entry.media, video, role)
            entry.key = await self._put(prepared, None)
            self.uploads += 1
        except MioCreateError as error:
            if is_transient(error):
                # Another job may succeed later: do not remember the failure.
                self._entries.pop(identity, None)
            else:
                entry.error = error
            raise
        except BaseException:
            self._entries.pop(identity, None)
            raise
        finally:
            entry.done.set()
        return entry.key, entry.media

    def _forget_old(self) -> None:
        if len(self._entries) <= self._size:
            return
        for identity in list(self._entries):
            if len(self._entries) <= self._size:
                break
            if self._entries[identity].done.is_set():
                del self._entries[identity]


def _identity(source: object) -> Hashable:
    if isinstance(source, (str, os.PathLike)):
        return ("path", os.path.abspath(os.fspath(source)))
    if isinstance(source, bytes):
        return ("bytes", source)
    return ("object", id(source))


def _checked_media(media: MediaType | None, video: bool | None, role: str) -> MediaType | None:
    if media is not None and video is not None and media.is_video != video:
        wanted, got = ("a video", "an image") if video else ("an image", "a video")
        raise UnsupportedFormatError(
            f"the {role} is {got}; {wanted} is needed here", operation="upload"
        )
    return media
