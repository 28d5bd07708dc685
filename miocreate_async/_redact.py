"""Redaction of secrets for reprs, logs and error messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "redact_headers", "redact_secret", "redact_url"]

REDACTED = "[redacted]"

# Query parameters that authorise a request on their own: presigned S3/R2 and common CDN forms.
_SECRET_PARAMS = re.compile(
    r"^(x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|token|"
    r"access_token|key-pair-id|policy|expires_signature)$",
    re.IGNORECASE,
)
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact_url(url: str) -> str:
    """The URL with signatures and credentials replaced, safe to show anywhere."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    query = [
        (name, REDACTED if _SECRET_PARAMS.match(name) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="[]"), ""))


def redact_secret(value: object) -> str:
    return REDACTED if value else repr(value)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: REDACTED if name.lower() in _SECRET_HEADERS else value
        for name, value in headers.items()
    }
