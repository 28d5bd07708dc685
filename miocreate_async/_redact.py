"""Redaction of secrets for reprs, logs and error messages."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "redact_headers",
    "redact_secret",
    "redact_text",
    "redact_url",
    "unsigned_url",
    "url_secrets",
]

REDACTED = "[redacted]"

# Query parameters that authorise a request on their own: presigned S3/R2, GCS (V4), Tencent COS
# and common CDN forms.
_SECRET_NAMES = (
    r"x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|"
    r"q-signature|q-ak|signature|sig|token|access_token|key-pair-id|policy|expires_signature"
)


@functools.cache
def _secret_params() -> re.Pattern[str]:
    # Compiled on first use, as the other pattern: ``import miocreate_async`` need not pay.
    return re.compile(rf"^({_SECRET_NAMES})$", re.IGNORECASE)


@functools.cache
def _secret_in_text() -> re.Pattern[str]:
    """The same parameters, and credentials after an auth scheme, inside free text (a
    server's message)."""
    return re.compile(
        rf"(?<![\w-])((?:{_SECRET_NAMES})=)[^&\s\"'<>]+|\b(Bearer|Basic|Token)\s+[\w.~+/=-]{{8,}}",
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
        (name, REDACTED if _secret_params().match(name) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="[]"), ""))


@functools.cache
def _signing_params() -> re.Pattern[str]:
    """Query parameters a signer adds (and changes on each signing): S3 and GCS V2/V4, Tencent
    COS, CloudFront; the secrets above are among them."""
    return re.compile(
        rf"^({_SECRET_NAMES}|x-amz-[\w-]+|x-goog-[\w-]+|awsaccesskeyid|googleaccessid|expires|"
        r"q-sign-algorithm|q-sign-time|q-key-time|q-header-list|q-url-param-list)$",
        re.IGNORECASE,
    )


# Azure's shared access signature: short names, taken as signing parameters only beside ``sig``.
_AZURE_SAS = frozenset({"se", "st", "sp", "sv", "sr", "spr", "srt", "ss", "si", "sdd"})


def unsigned_url(url: str) -> str:
    """The URL without its signature, credentials, expiry and other signing parameters, nor
    user info or fragment: what names the object, the same whenever it is signed again. Safe
    to store and show. Its other query parameters keep their order and encoding."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    pairs = [pair for pair in parts.query.split("&") if pair]
    names = [_name_of(pair) for pair in pairs]
    azure = "sig" in names
    kept = [
        pair
        for pair, name in zip(pairs, names, strict=True)
        if not (_signing_params().match(name) or (azure and name in _AZURE_SAS))
    ]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, "&".join(kept), ""))


def _name_of(pair: str) -> str:
    """A query parameter's name, decoded and lower case (``X-Amz-Signature=...``)."""
    return unquote_plus(pair.partition("=")[0]).lower()


def url_secrets(url: str) -> list[str]:
    """The values of a URL's signature and credential parameters (a server may echo them)."""
    try:
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return []
    found = [value for name, value in query if _secret_params().match(name) and value]
    # Echoed percent-encoded too (a credential holds slashes).
    return found + [quote(value, safe="") for value in found]


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Server text made safe to show: every known secret (the client secret, tokens), URL
    signatures and credentials after an auth scheme replaced. Servers echo requests back."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _secret_in_text().sub(
        lambda m: f"{m.group(1)}{REDACTED}" if m.group(1) else f"{m.group(2)} {REDACTED}", text
    )


def redact_secret(value: object) -> str:
    return REDACTED if value else repr(value)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: REDACTED if name.lower() in _SECRET_HEADERS else value
        for name, value in headers.items()
    }
