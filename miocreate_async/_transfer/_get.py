"""Downloads of result URLs: streamed to a temporary file, renamed into place only when whole.

A crash, a cut connection or a cancellation never leaves a partial file under the final name,
and the temporary file is removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import aiohttp
import anyio

from .._config import Config
from .._errors import InvalidInputError, MioCreateError, ResultTooLargeError, TransportError
from .._formats import media_type_of_name
from .._models import ProgressCallback
from .._proxy import proxy_for
from .._redact import redact_url
from .._retry import is_transient, parse_retry_after
from .._telemetry import retried
from ._progress import ProgressMeter
from ._replies import (
    ERROR_BODY_LIMIT,
    check_url,
    client_timeout,
    log_transfer,
    refuse_session_auth,
    storage_error,
    transport_error,
    wire_url,
)

__all__ = [
    "NAME_MAX",
    "PARTIAL_EXTRA",
    "StalePartials",
    "download",
    "fit_name",
    "name_max",
    "names_a_folder",
    "partial_owner",
    "stream",
]

#: The longest file name most file systems take, in bytes.
NAME_MAX = 255
#: Bytes a download's temporary name adds to its file's name: ``.`` and ``.<8 hex>.part``.
PARTIAL_EXTRA = len(".") + len(".00000000.part")
#: Bytes gathered before each disk write: few thread hops, flat memory.
WRITE_BLOCK = 1024 * 1024
_OPERATION = "download"
#: A download's temporary file: ``.<the file's name>.<8 hex digits>.part``.
_PARTIAL = re.compile(r"\.(.+)\.[0-9a-f]{8}\.part")


async def download(
    http: aiohttp.ClientSession,
    url: str,
    destination: str | os.PathLike[str],
    *,
    default_name: str,
    overwrite: bool = False,
    config: Config,
    limiter: anyio.CapacityLimiter,
    progress: ProgressCallback | None = None,
    expected_size: int | None = None,
) -> Path:
    """Stream ``url`` to ``destination`` (a file, or a folder to hold ``default_name``).

    Refuses to replace an existing file unless ``overwrite``; transient failures are retried
    from the start with backoff. Returns the path written. ``expected_size`` checks a reply
    that does not say its length.
    """
    refuse_session_auth(http)
    check_url(url, _OPERATION)
    target = await anyio.to_thread.run_sync(_resolve, destination, default_name)
    if not overwrite and await anyio.to_thread.run_sync(os.path.lexists, target):
        raise _exists(target)
    # A broken connection, a stall (MioCreateTimeoutError) or a 5xx may pass on retry.
    async for attempt in config.retry.retrying(on=is_transient, what=_OPERATION):
        with attempt:
            if attempt.number > 1:
                retried(attempt.number)
            async with limiter:
                error = await _download_once(
                    http, url, target, overwrite, config, progress, expected_size
                )
            if error is not None:
                raise error
    return target


def _resolve(destination: str | os.PathLike[str], default_name: str) -> Path:
    """The file to write. A folder is: a name ending with a separator, an existing folder, or a
    name without an extension that does not exist (``Path("out/")`` loses its slash). A file
    named with another format's extension gets the real one (``x.png`` for a JPEG: ``x.jpg``).
    Of missing folders only the last is created: a typo never makes a tree at the root."""
    text = os.fspath(destination)
    if not isinstance(text, str) or "\0" in text:
        raise InvalidInputError(f"a destination cannot hold a NUL character: {text!r}")
    path = Path(text).expanduser()
    name = _safe_name(default_name)
    if names_a_folder(text):
        _make_folder(path)
        path = path / name
    else:
        _make_folder(path.parent)
        real = Path(name).suffix
        given = media_type_of_name(path.name)
        if real and (given is None or given is not media_type_of_name(name)):
            path = path.with_suffix(real)
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise InvalidInputError(
            f"the file name {path.name[:40]!r}... is too long for the file system "
            f"({len(os.fsencode(path.name))} bytes, at most {NAME_MAX})"
        )
    return path


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` (or of its nearest existing
    parent) takes."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return min(NAME_MAX, os.pathconf(candidate, "PC_NAME_MAX"))
            except (OSError, ValueError, AttributeError):
                return NAME_MAX
    return NAME_MAX


def names_a_folder(destination: str) -> bool:
    """Whether a destination is a folder: a name ending with a separator, an existing folder, or
    a name without an extension that does not exist (``Path("out/")`` loses its slash)."""
    path = Path(destination).expanduser()
    separators = tuple(sep for sep in (os.sep, os.altsep) if sep)
    try:
        return (
            destination.endswith(separators) or path.is_dir() or not (path.suffix or path.exists())
        )
    except OSError:  # a name too long, say: refused as a file name
        return False


def _make_folder(folder: Path) -> None:
    if folder.is_dir():
        return
    if not folder.parent.is_dir():
        raise InvalidInputError(
            f"the folder {str(folder.parent)!r} does not exist (only the last folder of a "
            "destination is created)",
            operation=_OPERATION,
        )
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        # A file where the folder would be (``photo.jpg/out.jpg``), no permission...
        raise InvalidInputError(
            f"cannot write into {str(folder)!r}: {exc.strerror or exc}", operation=_OPERATION
        ) from None


async def stream(
    http: aiohttp.ClientSession,
    url: str,
    *,
    chunk_size: int,
    config: Config,
    max_bytes: int | None = None,
) -> AsyncGenerator[bytes, None]:
    """The bytes of ``url`` in chunks of at most ``chunk_size``, as they arrive; with
    ``max_bytes``, ``ResultTooLargeError`` once a reply says or sends more.

    Transient failures before the first byte are retried with backoff; after it, the error is
    raised (the caller has used the bytes already).
    """
    refuse_session_auth(http)
    check_url(url, _OPERATION)
    received = 0

    def retryable(error: MioCreateError) -> bool:
        return not received and is_transient(error)

    async for attempt in config.retry.retrying(on=retryable, what=_OPERATION):
        with attempt:
            try:
                async with _get(http, url, config) as response:
                    if response.status != 200:
                        raise await _refusal(response, url)
                    expected = response.content_length
                    _check_cap(expected, max_bytes)
                    async for data in response.content.iter_chunked(chunk_size):
                        received += len(data)
                        _check_cap(received, max_bytes)
                        yield data
                    if expected is not None and received != expected:
                        raise TransportError(
                            f"the download ended after {received} of {expected} bytes "
                            f"({redact_url(url)})",
                            operation=_OPERATION,
                        )
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise transport_error(exc, operation=_OPERATION, url=url) from None


def _check_cap(size: int | None, max_bytes: int | None) -> None:
    if size is not None and max_bytes is not None and size > max_bytes:
        raise ResultTooLargeError(
            f"the result has more than {max_bytes} bytes (read()'s max_bytes): use "
            "iter_bytes() or download()",
            operation=_OPERATION,
        )


@asynccontextmanager
async def _get(
    http: aiohttp.ClientSession, url: str, config: Config
) -> AsyncIterator[aiohttp.ClientResponse]:
    """The GET of a signed URL; its raw bytes (the length checks compare with Content-Length)."""
    async with http.get(
        wire_url(url),
        headers={"Accept-Encoding": "identity"},
        timeout=client_timeout(config),
        raise_for_status=False,
        proxy=proxy_for(url),
    ) as response:
        log_transfer("GET", url, response.status, response.content_length)
        yield response


async def _refusal(response: aiohttp.ClientResponse, url: str) -> MioCreateError:
    """The typed error of an error reply, with its ``Retry-After``."""
    content = await response.content.read(ERROR_BODY_LIMIT)
    reason = response.reason or ""
    error = storage_error(response.status, content, url, operation=_OPERATION, reason=reason)
    error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return error


def _safe_name(name: str) -> str:
    """A file name from a storage key: never climbing out of the chosen folder, no NUL, and
    short enough for the file system (the extension kept)."""
    base = name.replace("\\", "/").replace("\0", "_").rsplit("/", 1)[-1]
    if base in ("", ".", ".."):
        return "result"
    return fit_name(base)


def fit_name(name: str, limit: int = NAME_MAX) -> str:
    """``name`` when it takes at most ``limit`` bytes, else its start, a hash of the whole name
    and its extension: deterministic (a resumed batch finds the same file), distinct names
    stay distinct."""
    if len(os.fsencode(name)) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16:
        stem, extension = name, ""
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    tail = f"-{digest}" + (f".{extension}" if extension else "")
    room = limit - len(os.fsencode(tail))
    while stem and len(os.fsencode(stem)) > room:
        stem = stem[: max(0, min(len(stem) - 1, room))]
    return stem + tail


def _exists(target: Path) -> InvalidInputError:
    return InvalidInputError(f"{str(target)!r} already exists: pass overwrite=True to replace it")


async def _download_once(
    http: aiohttp.ClientSession,
    url: str,
    target: Path,
    overwrite: bool,
    config: Config,
    callback: ProgressCallback | None,
    expected_size: int | None = None,
) -> MioCreateError | None:
    """One GET; returns the error to raise or retry (its Retry-After kept), None when done."""
    # What the finally clause cleans up, set while it exists.
    to_remove: Path | None = None
    to_close: BinaryIO | None = None
    try:
        async with _get(http, url, config) as response:
            if response.status != 200:
                return await _refusal(response, url)
            expected = response.content_length
            if response.headers.get("Content-Encoding", "identity").lower() != "identity":
                expected = None  # aiohttp decodes it: the length on disk differs
            elif expected is None and expected_size:
                # No length given (a body ended by closing the connection): the result's own
                # size tells a cut-short download from a whole one.
                expected = expected_size
            meter = ProgressMeter(callback, expected)
            partial, file = await anyio.to_thread.run_sync(_create_partial, target)
            to_remove, to_close = partial, file
            received = 0
            block = bytearray()
            async for data in response.content.iter_any():
                received += len(data)
                block += data
                if len(block) >= WRITE_BLOCK:
                    await anyio.to_thread.run_sync(file.write, block)
                    block.clear()
                await meter.update(received)
            if expected is not None and received != expected:
                return TransportError(
                    f"the download ended after {received} of {expected} bytes ({redact_url(url)})",
                    operation=_OPERATION,
                )
            if received == 0:
                # A result is never empty: an empty 200 is a storage failure, not a file.
                return TransportError(
                    f"the download gave no bytes ({redact_url(url)})", operation=_OPERATION
                )
            to_close = None  # _finish closes it, whatever happens
            await anyio.to_thread.run_sync(_finish, file, bytes(block))
            await anyio.to_thread.run_sync(_move_into_place, partial, target, overwrite)
            to_remove = None
            await meter.finish(received)
            return None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        # aiohttp's messages hold the full signed URL: the typed error shows it redacted.
        return transport_error(exc, operation=_OPERATION, url=url)
    finally:
        # Synchronous on purpose: it must run even when the download is cancelled.
        if to_close is not None:
            to_close.close()
        if to_remove is not None:
            to_remove.unlink(missing_ok=True)


def _partial_stem(target: Path) -> str:
    """What the temporary files of ``target`` are named after."""
    stem = target.name
    if len(os.fsencode(f".{stem}.00000000.part")) > NAME_MAX:
        # A name that fits, but not with the temporary suffix: a short, unique stand-in.
        stem = hashlib.sha256(os.fsencode(stem)).hexdigest()[:32]
    return stem


def partial_owner(name: str) -> str | None:
    """The file a download's temporary file named ``name`` was for (its stand-in, for a
    long name); None for any other file."""
    match = _PARTIAL.fullmatch(name)
    return match[1] if match else None


class StalePartials:
    """The temporary files that killed downloads left, each removed before its destination is
    downloaded again. Each folder is listed once (a batch saves many results in one), and only
    files named as this module names them are touched."""

    def __init__(self) -> None:
        self._found: dict[Path, dict[str, list[Path]]] = {}
        self._lock = threading.Lock()

    def remove(self, destination: str | os.PathLike[str], default_name: str) -> None:
        """Blocking: run it in a thread. A bad destination raises as ``download`` would."""
        target = _resolve(destination, default_name)
        with self._lock:
            found = self._found.get(target.parent)
            if found is None:
                found = self._found[target.parent] = _partials_in(target.parent)
            stale = found.pop(_partial_stem(target), [])
        for path in stale:
            path.unlink(missing_ok=True)


def _partials_in(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            owner = partial_owner(entry.name)
            if owner is not None and entry.is_file(follow_symlinks=False):
                found.setdefault(owner, []).append(Path(entry.path))
    return found


def _create_partial(target: Path) -> tuple[Path, BinaryIO]:
    """A new hidden file next to the target (same filesystem, so the rename is atomic)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    stem = _partial_stem(target)
    while True:
        partial = target.with_name(f".{stem}.{secrets.token_hex(4)}.part")
        try:
            # Mode 0o666 lets the umask decide, as for any file the user creates.
            descriptor = os.open(partial, flags, 0o666)
        except FileExistsError:
            continue
        return partial, os.fdopen(descriptor, "wb")


def _finish(file: BinaryIO, tail: bytes) -> None:
    try:
        file.write(tail)
        file.flush()
        # On disk before the rename, so a crash cannot leave a renamed but empty file.
        os.fsync(file.fileno())
    finally:
        file.close()


def _move_into_place(partial: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(partial, target)
        return
    if os.name == "nt":
        try:
            os.rename(partial, target)  # refuses an existing target on Windows
        except FileExistsError:
            raise _exists(target) from None
        return
    try:
        # A hard link never replaces an existing file: no window for a file that appeared
        # during the download to be overwritten.
        os.link(partial, target)
    except FileExistsError:
        raise _exists(target) from None
    except OSError:
        # A filesystem without hard links: check, then rename.
        if os.path.lexists(target):
            raise _exists(target) from None
        os.rename(partial, target)
        return
    partial.unlink()
