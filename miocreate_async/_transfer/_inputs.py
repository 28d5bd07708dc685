"""What can be uploaded, and the checks made before any request.

The input types (``StreamSource``, ``UploadSource``, an uploaded ``Key``), and ``prepare_upload``:
a source checked locally (it exists, is not empty, is not too large, is an accepted format by its
name and its first bytes) and ready to be read from its start, with no network used.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from typing import Any, BinaryIO

import anyio
import attrs

from .._checks import at_least
from .._errors import (
    EmptySourceError,
    FileTooLargeError,
    InvalidInputError,
    MioCreateError,
    MioCreateTimeoutError,
    SourceNotFoundError,
    UnsupportedFormatError,
)
from .._formats import (
    ACCEPTED_EXTENSIONS,
    MAX_UPLOAD_BYTES,
    SNIFF_BYTES,
    MediaType,
    media_type_of_name,
    sniff,
)

__all__ = [
    "CHUNK_SIZE",
    "Key",
    "LocalFile",
    "MediaInput",
    "PreparedUpload",
    "StreamSource",
    "UploadSource",
    "as_key",
    "is_url",
    "prepare_upload",
    "source_failure",
]

#: Bytes per disk read and per write to the connection: few thread hops, flat memory.
CHUNK_SIZE = 1024 * 1024


def _async_iterable(_: object, attribute: Any, value: Any) -> None:
    if not callable(getattr(value, "__aiter__", None)):
        raise InvalidInputError(
            f"StreamSource.chunks must be an async iterable of bytes, got {type(value).__name__}"
        )


def _text(_: object, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or "\0" in value:
        raise InvalidInputError(f"StreamSource.{attribute.name} must be a string, got {value!r}")


@attrs.frozen
class StreamSource:
    """An async iterable of bytes with a declared size, for data that is not a file.

    ``size`` must be exact: it is sent as ``Content-Length``. The stream is read once, so an
    upload from it is not retried after it started (the error says so).
    """

    chunks: AsyncIterable[bytes] = attrs.field(validator=_async_iterable)
    size: int = attrs.field(validator=at_least(0, error=InvalidInputError))
    file_name: str = attrs.field(validator=_text)


#: A ``str`` is a path, an http(s) URL (read by the client, straight into the upload), or a key.
UploadSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | StreamSource


#: What the one-call jobs accept: a path, bytes, a binary file object, a stream with a declared
#: size, or an already-uploaded key (``Key``, or a key string that is no local file).
MediaInput = UploadSource


class Key(str):
    """An already-uploaded key, marked so that it is never mistaken for a local path."""

    __slots__ = ()


def is_url(source: object) -> bool:
    """Whether ``source`` is an http(s) URL to upload from (a plain string, not a ``Key``)."""
    return (
        isinstance(source, str)
        and not isinstance(source, Key)
        and source.startswith(("http://", "https://"))
    )


def as_key(source: object) -> str | None:
    """The uploaded key ``source`` stands for, or None when it is something to upload.

    A ``Key`` is a key. A plain string is an http(s) URL to upload from, or a path when such a
    file exists; otherwise a string shaped like a storage key (``folder/name.ext``, not absolute
    or ``./``-relative) is a key.
    """
    if isinstance(source, Key):
        return str(source)
    if isinstance(source, (str, os.PathLike)) and "\0" in os.fspath(source):
        raise InvalidInputError(f"a path or key cannot hold a NUL character: {source!r}")
    if not isinstance(source, str) or is_url(source) or os.path.exists(source):
        return None
    if "/" in source and not source.startswith(("/", ".", "~")) and os.sep == "/":
        return source
    raise SourceNotFoundError(
        f"no such file: {source!r} (to pass an uploaded key, use miocreate_async.Key(...))",
        operation="upload",
    )


#: Opens the data from its start; each call gives a fresh generator of chunks.
_Opener = Callable[[], AsyncGenerator[bytes, None]]


@attrs.frozen
class PreparedUpload:
    """An upload that passed every local check; no network was used yet."""

    file_name: str
    size: int
    media_type: MediaType
    #: Whether the data can be read again from the start (for renewals and retries).
    replayable: bool
    _open: _Opener = attrs.field(repr=False, eq=False, alias="open")
    #: The regular file the data is, when it is one: the kernel can then send it (sendfile).
    file: LocalFile | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def content_type(self) -> str:
        return self.media_type.content_type

    def chunks(self) -> AsyncGenerator[bytes, None]:
        """The data from its start, in chunks of about ``CHUNK_SIZE``."""
        return self._open()


# --- local checks -----------------------------------------------------------------------------


async def prepare_upload(
    source: UploadSource,
    *,
    file_name: str | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    stall_timeout: float | None = None,
) -> PreparedUpload:
    """Check ``source`` without any request: it exists and is readable, is not empty, is at most
    ``max_bytes``, and is an accepted format by its name *and* its first bytes. A stream that
    gives no byte for ``stall_timeout`` seconds fails then."""
    if file_name is not None and (not isinstance(file_name, str) or "\0" in file_name):
        raise InvalidInputError(f"file_name must be a string without NUL, got {file_name!r}")
    if isinstance(source, StreamSource):
        return await _prepare_stream(source, file_name, max_bytes, stall_timeout)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _prepare_bytes(source, file_name, max_bytes)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not isinstance(path, str) or "\0" in path:
            raise InvalidInputError(f"a path cannot hold a NUL character: {path!r}")
        return await _prepare_path(path, file_name, max_bytes)
    if callable(getattr(source, "read", None)):
        return await _prepare_file(source, file_name, max_bytes)
    raise InvalidInputError(
        f"cannot upload a {type(source).__name__}: pass a path, bytes, a binary file object "
        "or a StreamSource"
    )


def _check(name: str, size: int, head: bytes, max_bytes: int, what: str) -> MediaType:
    """The service's rules (codes 703 and 704), checked locally; returns the sniffed type."""
    if size == 0:
        raise EmptySourceError(f"{what} is empty")
    if size > max_bytes:
        raise FileTooLargeError(
            f"{what} is {_megabytes(size)} ({size} bytes), over the limit of "
            f"{_megabytes(max_bytes)} ({max_bytes} bytes)"
        )
    accepted = ", ".join(sorted(ACCEPTED_EXTENSIONS))
    claimed = media_type_of_name(name)
    if claimed is None:
        raise UnsupportedFormatError(
            f"the file name {name!r} has no accepted extension; the service accepts {accepted}"
        )
    actual = sniff(head)
    if actual is None:
        raise UnsupportedFormatError(
            f"{what} is named {name!r} but its content is not JPG, PNG, WEBP, GIF, "
            "MP4/M4V/MOV or WEBM (its first bytes match none of them)"
        )
    if actual.is_video != claimed.is_video:
        family = "a video" if claimed.is_video else "an image"
        raise UnsupportedFormatError(
            f"{what} is named {name!r} like {family}, but its content is {actual.value.upper()}"
        )
    return actual


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _base_name(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _name_for(explicit: str | None, own: str | None, head: bytes) -> str:
    """The name sent to the service: given, the source's own, or ``upload.<ext>`` by content."""
    for name in (explicit, own):
        if name and _base_name(name):
            return _base_name(name)
    detected = sniff(head)
    return f"upload.{detected.extension}" if detected else "upload"


async def _prepare_path(path: str, file_name: str | None, max_bytes: int) -> PreparedUpload:
    size, head, identity = await anyio.to_thread.run_sync(_inspect_path, path)
    name = _name_for(file_name, path, head)
    media = _check(name, size, head, max_bytes, f"the file {path!r}")

    async def chunks() -> AsyncGenerator[bytes, None]:
        handle = await anyio.to_thread.run_sync(_open_for_reading, path)
        try:
            while True:
                chunk = await anyio.to_thread.run_sync(handle.read, CHUNK_SIZE)
                if not chunk:
                    return
                yield chunk
        finally:
            handle.close()  # synchronous: it must happen even when cancelled

    local = LocalFile(path, size, identity)
    return PreparedUpload(name, size, media, replayable=True, open=chunks, file=local)


@attrs.frozen
class LocalFile:
    """A regular file as the local checks saw it: its path, size and identity."""

    path: str
    size: int
    #: ``(st_ino, st_size, st_mtime_ns)`` when checked: any change means it was rewritten.
    identity: tuple[int, int, int]

    def open(self) -> BinaryIO:
        """Open it to send it; refuse when it is no longer the file that was checked."""
        handle = _open_for_reading(self.path)
        try:
            self.check(handle)
        except BaseException:
            handle.close()
            raise
        return handle

    def check(self, handle: BinaryIO) -> None:
        """Raise when the open file differs from the one checked (replaced or rewritten)."""
        if _identity_of(os.fstat(handle.fileno())) != self.identity:
            raise InvalidInputError(
                f"{self.path!r} changed after it was checked (during the upload?): not sent"
            )


def _identity_of(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_ino, info.st_size, info.st_mtime_ns


def _inspect_path(path: str) -> tuple[int, bytes, tuple[int, int, int]]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SourceNotFoundError(f"no such file: {path!r}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SourceNotFoundError(f"cannot read {path!r}: {reason}") from None
    if stat.S_ISDIR(info.st_mode):
        raise SourceNotFoundError(f"{path!r} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device has no size to declare, and opening one may block.
        raise SourceNotFoundError(f"{path!r} is not a regular file")
    with _open_for_reading(path) as handle:
        head = handle.read(SNIFF_BYTES)
    return info.st_size, head, _identity_of(info)


def _open_for_reading(path: str) -> BinaryIO:
    try:
        return open(path, "rb")  # the caller closes it
    except FileNotFoundError:
        raise SourceNotFoundError(f"no such file: {path!r}") from None
    except OSError as exc:
        raise SourceNotFoundError(f"cannot read {path!r}: {exc.strerror}") from None


def _prepare_bytes(
    data: bytes | bytearray | memoryview, file_name: str | None, max_bytes: int
) -> PreparedUpload:
    try:
        view = memoryview(data).cast("B")
    except TypeError:
        raise InvalidInputError("a memoryview to upload must be C-contiguous") from None
    head = bytes(view[:SNIFF_BYTES])
    name = _name_for(file_name, None, head)
    media = _check(name, view.nbytes, head, max_bytes, "the data")

    async def chunks() -> AsyncGenerator[bytes, None]:
        for start in range(0, view.nbytes, CHUNK_SIZE):
            # A copy per chunk: the caller may change a bytearray while the upload runs.
            yield bytes(view[start : start + CHUNK_SIZE])

    return PreparedUpload(name, view.nbytes, media, replayable=True, open=chunks)


async def _prepare_file(file: BinaryIO, file_name: str | None, max_bytes: int) -> PreparedUpload:
    start, size, head = await anyio.to_thread.run_sync(_inspect_file, file)
    own = getattr(file, "name", None)
    name = _name_for(file_name, own if isinstance(own, str) else None, head)
    media = _check(name, size, head, max_bytes, f"the file object {name!r}")

    async def chunks() -> AsyncGenerator[bytes, None]:
        # Sent from where the caller's position was; the caller keeps the file open.
        await anyio.to_thread.run_sync(file.seek, start)
        remaining = size
        while remaining > 0:
            chunk = await anyio.to_thread.run_sync(file.read, min(CHUNK_SIZE, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    return PreparedUpload(name, size, media, replayable=True, open=chunks)


def _inspect_file(file: BinaryIO) -> tuple[int, int, bytes]:
    if isinstance(file, io.TextIOBase):
        raise InvalidInputError("the file object is in text mode: open it with 'rb'")
    try:
        start = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(start)
        head = file.read(SNIFF_BYTES)
        file.seek(start)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValueError) and "closed" in str(exc):
            raise SourceNotFoundError("the file object is closed") from None
        raise InvalidInputError(
            "the file object is not seekable, so its size is unknown: wrap it in "
            "StreamSource(chunks, size, file_name)"
        ) from None
    if not isinstance(head, bytes):
        raise InvalidInputError("the file object is in text mode: open it with 'rb'")
    return start, max(0, end - start), head


async def _prepare_stream(
    source: StreamSource, file_name: str | None, max_bytes: int, stall_timeout: float | None
) -> PreparedUpload:
    if source.size < 0:
        raise InvalidInputError(f"StreamSource size must not be negative, got {source.size}")
    name = _name_for(file_name, source.file_name, b"")
    what = f"the stream {name!r}"
    # Size and name first: they need no byte of the stream.
    if source.size == 0:
        raise EmptySourceError(f"{what} is empty (declared size 0)")
    if source.size > max_bytes:
        _check(name, source.size, b"", max_bytes, what)
    iterator = aiter(source.chunks)
    peeked: list[bytes] = []
    seen = 0
    # Chunks may be tiny: gather enough for the sniff, and keep them to send first.
    while seen < SNIFF_BYTES and seen < source.size:
        try:
            with anyio.fail_after(stall_timeout):
                chunk = _bytes_of(await anext(iterator), name)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise MioCreateTimeoutError(
                f"{what} gave no byte for {stall_timeout:g} s", operation="upload"
            ) from None
        except Exception as exc:
            raise source_failure(exc, name) from exc
        peeked.append(chunk)
        seen += len(chunk)
    if seen == 0:
        raise EmptySourceError(f"{what} gave no bytes (declared size {source.size})")
    head = b"".join(peeked)[:SNIFF_BYTES]
    media = _check(name, source.size, head, max_bytes, what)
    opened = False

    async def chunks() -> AsyncGenerator[bytes, None]:
        nonlocal opened
        if opened:
            raise InvalidInputError(f"{what} was already read and cannot be replayed")
        opened = True
        for chunk in peeked:
            yield chunk
        peeked.clear()
        async for chunk in iterator:
            yield _bytes_of(chunk, name)

    return PreparedUpload(name, source.size, media, replayable=False, open=chunks)


def _bytes_of(chunk: object, name: str) -> bytes:
    if not isinstance(chunk, (bytes, bytearray, memoryview)):
        raise InvalidInputError(
            f"the stream {name!r} gave a {type(chunk).__name__}, not bytes", operation="upload"
        )
    return bytes(chunk)


def source_failure(exc: Exception, name: str) -> MioCreateError:
    """The typed error for a source that failed while read (its reason as ``__cause__``)."""
    if isinstance(exc, MioCreateError):
        return exc
    error: MioCreateError
    if isinstance(exc, OSError):
        error = SourceNotFoundError(
            f"reading {name!r} failed: {exc.strerror or exc}", operation="upload"
        )
    else:
        error = InvalidInputError(
            f"reading {name!r} failed: {type(exc).__name__}: {exc}", operation="upload"
        )
    error.__cause__ = exc
    return error
