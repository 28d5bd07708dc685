"""Uploads, once per source: "upload these, concurrently, each distinct one once".

Single-flight: while a source is checked or uploaded, others asking for it wait for that instead
of starting their own. Paths are known by their absolute path, bytes by their value, other
sources (files, bytearrays, streams) by identity. At most ``size`` settled uploads are
remembered (the least recently used are forgotten), so memory stays flat over any number of
jobs. The one-call jobs, ``swap_many`` and the CLI all upload through it.
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager

import anyio
import attrs

from .._config import Config
from .._errors import MioCreateError, UnsupportedFormatError
from .._formats import MediaType
from .._models import ProgressCallback
from .._retry import is_transient
from ._inputs import PreparedUpload, UploadSource, as_key, is_url
from ._url import prepare_source

__all__ = ["ProgressFor", "Put", "UploadCache", "Wanted", "check_kind"]

#: Sends a checked upload to storage and returns its key (the client's streamed PUT).
Put = Callable[[PreparedUpload, ProgressCallback | None], Awaitable[str]]
#: The progress callback for an upload that starts, if any (a bar per file, a batch event).
ProgressFor = Callable[[UploadSource, PreparedUpload], ProgressCallback | None]
#: An input, whether it must be a video (True), an image (False) or either (None), and its role
#: in messages ("face", "image"...).
Wanted = tuple[UploadSource, bool | None, str]


def check_kind(media: MediaType, video: bool | None, role: str, name: str) -> None:
    """Refuse an image where a video is needed, and the reverse, before any upload."""
    if video is not None and media.is_video != video:
        wanted, got = ("a video", "an image") if video else ("an image", "a video")
        raise UnsupportedFormatError(
            f"the {role} {name!r} is {got}; {wanted} is needed here", operation="upload"
        )


@attrs.define(eq=False)
class _Upload:
    identity: Hashable
    #: Held so that an identity key (``id()``) stays unique while the entry lives.
    source: UploadSource
    checked: anyio.Event = attrs.Factory(anyio.Event)
    done: anyio.Event = attrs.Factory(anyio.Event)
    prepared: PreparedUpload | None = None
    started: bool = False
    key: str | None = None
    error: MioCreateError | None = None

    @property
    def settled(self) -> bool:
        return self.done.is_set() or (self.checked.is_set() and self.prepared is None)


class UploadCache:
    """``await cache.key_of(source)``: the source's key, uploading it once for all callers."""

    def __init__(
        self,
        put: Put,
        *,
        size: int = 1024,
        progress: ProgressFor | None = None,
        stall_timeout: float | None = None,
        config: Config | None = None,
    ) -> None:
        self._put = put
        #: Where URL inputs may be read from, and their deadlines.
        self._config = config
        #: A stream that gives no byte for this long fails its local check.
        self._stall_timeout = stall_timeout
        self._size = size
        self._progress = progress
        self._entries: OrderedDict[Hashable, _Upload] = OrderedDict()
        #: Uploads made, and requests answered by an upload made or under way.
        self.uploads: int = 0
        self.hits: int = 0

    async def key_of(
        self, source: UploadSource, *, video: bool | None = None, role: str = "input"
    ) -> tuple[str, MediaType | None]:
        """The key of ``source`` and its media type (None for a key given as is)."""
        key = as_key(source)
        if key is not None:
            return key, None
        while True:
            entry = await self._checked(source, video, role)
            assert entry.prepared is not None
            if not entry.started:
                return await self._upload(entry), entry.prepared.media_type
            self.hits += 1
            await entry.done.wait()
            if entry.key is not None:
                return entry.key, entry.prepared.media_type
            if entry.error is not None:
                raise copy.copy(entry.error)
            # Its upload was cancelled or failed for now: start again.

    async def keys_of(self, inputs: Sequence[Wanted]) -> list[str]:
        """The keys of ``inputs``: every one checked locally first (a bad face costs no image
        upload), then the distinct ones uploaded concurrently. The first failure stops the
        other uploads and is raised as itself."""
        for source, video, role in inputs:
            if as_key(source) is None:
                await self._checked(source, video, role)
        keys = [""] * len(inputs)
        failures: list[MioCreateError] = []

        async def one(index: int, source: UploadSource, video: bool | None, role: str) -> None:
            try:
                keys[index], _ = await self.key_of(source, video=video, role=role)
            except MioCreateError as error:
                failures.append(error)
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for index, (source, video, role) in enumerate(inputs):
                group.start_soon(one, index, source, video, role)
        if failures:
            raise failures[0]
        return keys

    async def _checked(self, source: UploadSource, video: bool | None, role: str) -> _Upload:
        """The entry of ``source``, checked locally (once) and of the kind wanted."""
        identity = _identity(source)
        while True:
            entry = self._entries.get(identity)
            if entry is None:
                break
            self._entries.move_to_end(identity)
            await entry.checked.wait()
            if entry.prepared is not None:
                check_kind(entry.prepared.media_type, video, role, entry.prepared.file_name)
                return entry
            if entry.error is not None:
                raise copy.copy(entry.error)
            # Its check was cancelled: check again.
        entry = _Upload(identity, source)
        self._entries[identity] = entry
        self._forget_old()
        with self._settling(entry, entry.checked):
            entry.prepared = await prepare_source(
                source, stall_timeout=self._stall_timeout, config=self._config
            )
        check_kind(entry.prepared.media_type, video, role, entry.prepared.file_name)
        return entry

    async def _upload(self, entry: _Upload) -> str:
        prepared = entry.prepared
        assert prepared is not None
        entry.started = True
        with self._settling(entry, entry.done):
            progress = self._progress(entry.source, prepared) if self._progress else None
            entry.key = key = await self._put(prepared, progress)
            self.uploads += 1
        return key

    @contextmanager
    def _settling(self, entry: _Upload, settled: anyio.Event) -> Iterator[None]:
        """Whatever the block ends with, ``settled`` is set for the callers waiting on it. A
        lasting failure is remembered for them; a transient one or a cancellation forgets the
        entry, so that the next caller starts again (another may succeed later)."""
        try:
            yield
        except MioCreateError as error:
            if is_transient(error):
                self._forget(entry)
            else:
                entry.error = error
            raise
        except BaseException:
            self._forget(entry)
            raise
        finally:
            settled.set()

    def _forget(self, entry: _Upload) -> None:
        if self._entries.get(entry.identity) is entry:
            del self._entries[entry.identity]

    def _forget_old(self) -> None:
        if len(self._entries) <= self._size:
            return
        for identity in list(self._entries):
            if len(self._entries) <= self._size:
                break
            if self._entries[identity].settled:
                del self._entries[identity]


def _identity(source: object) -> Hashable:
    if is_url(source):
        return ("url", source)
    if isinstance(source, (str, os.PathLike)):
        return ("path", os.path.abspath(os.fspath(source)))
    if isinstance(source, bytes):
        return ("bytes", source)
    return ("object", id(source))
