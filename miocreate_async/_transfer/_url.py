"""Uploads from an http(s) URL: the source is streamed straight into the presigned PUT.

The PUT needs its length up front, so the source must send a ``Content-Length``; one that does
not (a chunked reply) is refused before anything is uploaded, rather than spooled to disk. The
source is read again from its start for a retry or a renewed upload URL, like a file.

A URL comes from the user's users: it is read only from the addresses ``Config.url_sources``
allows (global ones by default; checked where the connection is made, on every redirect), and
within a deadline that grows with its size (a source that drips its bytes fails).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import aiohttp
from yarl import URL

from .._addresses import UrlSources
from .._config import Config
from .._errors import InvalidInputError, SourceNotFoundError, SourceTooSlowError
from .._formats import MAX_UPLOAD_BYTES, SNIFF_BYTES
from .._redact import redact_url
from ._inputs import (
    CHUNK_SIZE,
    PreparedUpload,
    UploadSource,
    _check,
    _name_for,
    is_url,
    prepare_upload,
)
from ._replies import wire_url
from ._resolver import GuardedResolver, RefusedAddress, check_host

__all__ = ["MAX_REDIRECTS", "prepare_source", "prepare_url"]

#: Redirects followed (each one checked as the first URL is) before a source is refused.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def prepare_source(
    source: UploadSource,
    *,
    file_name: str | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    stall_timeout: float | None = None,
    config: Config | None = None,
) -> PreparedUpload:
    """``prepare_upload``, and http(s) URLs too (read as ``config`` allows)."""
    if is_url(source):
        assert isinstance(source, str)
        return await prepare_url(
            source, file_name=file_name, max_bytes=max_bytes, config=config or Config()
        )
    return await prepare_upload(
        source, file_name=file_name, max_bytes=max_bytes, stall_timeout=stall_timeout
    )


async def prepare_url(
    url: str,
    *,
    file_name: str | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    config: Config | None = None,
) -> PreparedUpload:
    """Check an http(s) source as a file is checked (size, name, first bytes), from the
    headers and first bytes of one GET; the upload reads it again."""
    config = config or Config()
    shown = redact_url(url)
    own_name = unquote(PurePosixPath(urlsplit(url).path).name) or None
    deadline = time.monotonic() + config.source_deadline(SNIFF_BYTES)
    try:
        async with _get(url, shown, config, deadline) as response:
            size = _length(response, shown)
            head = await response.content.read(SNIFF_BYTES) if size else b""
    except asyncio.TimeoutError:
        raise _too_slow(shown, config, SNIFF_BYTES) from None
    except aiohttp.ClientError as exc:
        raise SourceNotFoundError(f"cannot read the source {shown}: {_reason(exc)}") from None
    name = _name_for(file_name, own_name, head)
    media = _check(name, size, head, max_bytes, f"the source {shown}")

    async def chunks() -> AsyncGenerator[bytes, None]:
        deadline = time.monotonic() + config.source_deadline(size)
        try:
            async with _get(url, shown, config, deadline) as response:
                if _length(response, shown) != size:
                    raise InvalidInputError(f"the source {shown} changed size since it was checked")
                async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                    yield chunk
        except asyncio.TimeoutError:
            raise _too_slow(shown, config, size) from None
        except aiohttp.ClientError as exc:
            reason = _reason(exc)
            raise SourceNotFoundError(f"reading the source {shown} failed: {reason}") from None

    return PreparedUpload(name, size, media, replayable=True, open=chunks)


def _too_slow(shown: str, config: Config, size: int) -> SourceTooSlowError:
    return SourceTooSlowError(
        f"the source {shown} did not send its bytes in time ({config.source_deadline(size):g} s "
        f"for {size} bytes: Config.source_timeout {config.source_timeout:g} s, "
        f"source_min_rate {config.source_min_rate:g} bytes/s)",
        operation="upload",
    )


def _reason(exc: aiohttp.ClientError) -> str:
    """aiohttp's message holds the whole URL: only its reason is shown."""
    cause = getattr(exc, "os_error", None)
    return str(cause.strerror or cause) if isinstance(cause, OSError) else type(exc).__name__


@asynccontextmanager
async def _get(
    url: str, shown: str, config: Config, deadline: float
) -> AsyncIterator[aiohttp.ClientResponse]:
    """The source's reply, redirects followed by hand (each hop's host checked), within
    ``deadline`` (the body too: aiohttp's ``total`` covers the reading)."""
    sources = config.url_sources
    resolver = GuardedResolver(sources)
    # A session of its own, with no header of the client's: the API token never goes to
    # another host. Its own connector, so no connection made for another host is reused.
    connector = aiohttp.TCPConnector(resolver=resolver, limit=1)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            target = wire_url(url)
            for _ in range(MAX_REDIRECTS + 1):
                _check_target(target, shown, sources)
                timeout = aiohttp.ClientTimeout(
                    total=max(deadline - time.monotonic(), 0.001), sock_connect=30, sock_read=60
                )
                try:
                    async with http.get(target, allow_redirects=False, timeout=timeout) as response:
                        if response.status in _REDIRECTS:
                            target = _next_hop(response, shown)
                            continue
                        if response.status >= 400:
                            raise SourceNotFoundError(
                                f"the source {shown} answered HTTP {response.status}"
                            )
                        yield response
                        return
                except aiohttp.ClientConnectorError as exc:
                    if isinstance(exc.os_error, RefusedAddress):
                        raise _refused(exc.os_error, shown) from None
                    raise
            raise SourceNotFoundError(
                f"the source {shown} redirects more than {MAX_REDIRECTS} times"
            )
    finally:
        await resolver.close()


def _check_target(target: URL, shown: str, sources: UrlSources) -> None:
    if target.scheme not in ("http", "https") or not target.host:
        raise InvalidInputError(f"the source {shown} is not an http(s) URL with a host")
    try:
        check_host(target.host, sources)
    except RefusedAddress as exc:
        raise _refused(exc, shown) from None


def _refused(exc: RefusedAddress, shown: str) -> InvalidInputError:
    return InvalidInputError(f"the source {shown} was not read: {exc}", operation="upload")


def _next_hop(response: aiohttp.ClientResponse, shown: str) -> URL:
    location = response.headers.get("Location")
    if not location:
        raise SourceNotFoundError(f"the source {shown} redirects without a Location")
    try:
        return response.url.join(URL(location, encoded=True))
    except ValueError:
        raise SourceNotFoundError(f"the source {shown} redirects to an invalid URL") from None


def _length(response: aiohttp.ClientResponse, shown: str) -> int:
    if response.content_length is None:
        raise InvalidInputError(
            f"the source {shown} sends no Content-Length: the upload needs the size up front "
            "(save it to a file first, or pass a StreamSource with its size)"
        )
    return response.content_length
