"""What uploads and downloads share: their timeouts, and the translation of storage replies and
aiohttp failures into the library's errors."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from .._config import Config
from .._errors import (
    ConfigurationError,
    ConnectError,
    MioCreateError,
    MioCreateTimeoutError,
    ProtocolError,
    StorageError,
    TransportError,
    UrlExpiredError,
)
from .._presigned import url_expires_at
from .._redact import redact_text, redact_url, url_secrets

logger = logging.getLogger("miocreate_async")

__all__ = [
    "ERROR_BODY_LIMIT",
    "check_url",
    "client_timeout",
    "log_transfer",
    "refuse_session_auth",
    "storage_error",
    "transport_error",
    "wire_url",
]


def check_url(url: object, operation: str) -> str:
    """A storage URL from the service must be http(s): anything else (``file:``, ``ftp:``, a
    relative path) is a broken reply, refused before any request."""
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https"):
        shown = redact_url(url) if isinstance(url, str) else repr(url)
        raise ProtocolError(f"the {operation} URL is not an http(s) URL: {shown!r}")
    if not urlsplit(url).hostname:
        raise ProtocolError(f"the {operation} URL names no host: {redact_url(url)!r}")
    return url


def wire_url(url: str) -> URL:
    """The URL sent byte for byte as given: a presigned URL's signature covers its exact
    encoding, which aiohttp would otherwise normalise (``%2F`` to ``/``, ``%3D`` to ``=``).
    Only a URL that is not encoded yet (spaces, non-ASCII, a bare ``%``) is encoded."""
    if url.isascii() and not _UNENCODED.search(url):
        return URL(url, encoded=True)
    return URL(url)


#: What an encoded URL never holds: spaces, control characters, quotes, a ``%`` without hex.
_UNENCODED = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]|%(?![0-9A-Fa-f]{2})')


def refuse_session_auth(http: aiohttp.ClientSession) -> None:
    """Session-wide credentials would go to the storage host with every transfer: the API
    token must never leave for another host."""
    if http.auth is not None or "Authorization" in http.headers:
        raise ConfigurationError(
            "the aiohttp session sends an Authorization header on every request; it would "
            "reach the storage host: give the token per request instead"
        )


def log_transfer(method: str, url: str, status: int, size: int | None) -> None:
    """One debug line per storage request, its signed URL redacted."""
    logger.debug("%s %s -> HTTP %d (%s bytes)", method, redact_url(url), status, size)


def client_timeout(config: Config) -> aiohttp.ClientTimeout:
    """No total deadline (a slow 500 MB transfer is fine while it moves): a connect deadline,
    and ``sock_read`` as the stall timeout of the reply."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=config.connect_timeout,
        sock_connect=config.connect_timeout,
        sock_read=config.stall_timeout,
    )


# --- storage replies --------------------------------------------------------------------------

#: How much of an error reply is read: S3 error documents are a few hundred bytes.
ERROR_BODY_LIMIT = 64 * 1024

_XML_CODE = re.compile(rb"<Code>\s*([^<]{1,200}?)\s*</Code>")
_XML_MESSAGE = re.compile(rb"<Message>\s*([^<]{0,2000}?)\s*</Message>")
_EXPIRED_CODES = frozenset({"ExpiredRequest", "ExpiredToken", "RequestExpired"})


def parse_storage_error(body: bytes) -> tuple[str | None, str | None]:
    """``(Code, Message)`` of an S3-style XML error document; regexes, not an XML parser, since
    the document comes from the network and only two fields are wanted."""
    code = _XML_CODE.search(body)
    message = _XML_MESSAGE.search(body)
    return (
        html.unescape(code.group(1).decode("utf-8", "replace")) if code else None,
        html.unescape(message.group(1).decode("utf-8", "replace")) if message else None,
    )


def is_expired_reply(status: int, code: str | None, message: str | None, url: str) -> bool:
    """S3 says ``AccessDenied`` "Request has expired", R2 says ``ExpiredRequest``; a bare 403
    for an URL past its ``X-Amz-Expires`` means the same."""
    if code in _EXPIRED_CODES:
        return True
    if status != 403:
        return False
    if code == "AccessDenied" and message and "expired" in message.lower():
        return True
    expires_at = url_expires_at(url)
    return code is None and expires_at is not None and expires_at <= time.time()


def storage_error(
    status: int, body: bytes, url: str, *, operation: str, reason: str = ""
) -> StorageError:
    """The typed error for a storage reply with an error status, carrying its Code and Message."""
    code, message = parse_storage_error(body)
    # Storage echoes requests: its text is shown without the URL's signature.
    secrets = url_secrets(url)
    code = redact_text(code, secrets) if code else code
    message = redact_text(message, secrets) if message else message
    shown = redact_url(url)
    if is_expired_reply(status, code, message, url):
        detail = f"{code}: {message}" if code and message else (code or message or "expired")
        return UrlExpiredError(
            f"the signed URL has expired ({detail}): {shown}",
            operation=operation,
            http_status=status,
            storage_code=code,
        )
    if code or message:
        text = f"storage refused the {operation}: {code or 'error'}: {message or '(no message)'}"
    else:
        text = f"storage answered HTTP {status} {reason}".rstrip() + f" to the {operation}"
    return StorageError(
        f"{text} ({shown})", operation=operation, http_status=status, storage_code=code
    )


# --- aiohttp failures -------------------------------------------------------------------------


def transport_error(exc: BaseException, *, operation: str, url: str) -> MioCreateError:
    """The typed error for an aiohttp/OS failure.

    aiohttp's own messages often contain the full URL, signature included, so they are not
    copied: the error names the failure and the redacted URL only (raise it ``from None``).
    """
    shown = redact_url(url)
    reason = type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        reason = f"{reason}: {exc.strerror}"
    if isinstance(exc, aiohttp.InvalidURL):
        return ProtocolError(f"not a valid URL for the {operation}: {shown}", operation=operation)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectError(
            f"timed out connecting to storage for the {operation} ({shown})", operation=operation
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(
            f"could not connect to storage for the {operation} ({reason}; {shown})",
            operation=operation,
        )
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError, TimeoutError)):
        return MioCreateTimeoutError(
            f"storage stopped answering during the {operation} ({reason}; {shown})",
            operation=operation,
        )
    return TransportError(
        f"the connection to storage broke during the {operation} ({reason}; {shown})",
        operation=operation,
    )
