"""The API's reply envelope (``{"code", "message", "data"}``): its ``data``, or the typed error
its code (then the HTTP status) names. Pure: no I/O; the session reads the reply."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._errors import HTTPStatusError, ProtocolError, error_for_code
from ._hints import BASE_URL_HINT
from ._operations import Operation
from ._redact import redact_text, redact_url

__all__ = ["decode"]


def decode(
    raw: bytes,
    status: int,
    reason: str,
    operation: str,
    secrets: Callable[[], list[str]] | None = None,
    url: str = "",
) -> Any:
    """The envelope's ``data``; the typed error when the code (then the HTTP status) says so.

    Server text goes into errors scrubbed of ``secrets()`` and signatures: servers echo
    requests. (Asked for only when an error is made: a success shows no server text.)
    """
    envelope = _json(raw)
    code = envelope.get("code") if envelope.__class__ is dict else None
    if code == 200 and code.__class__ is int:  # nearly every reply: no more checks
        return envelope.get("data")
    if operation == _TOKEN and isinstance(envelope, dict) and "code" not in envelope:
        # A bare OAuth reply (the token path is unconfirmed): usable if it holds a token.
        if status < 400 and "access_token" in envelope:
            return envelope
        raise (ProtocolError if status < 400 else HTTPStatusError)(
            f"the token endpoint answered HTTP {status} without an API envelope or a token "
            "(its reply is not shown: it may hold credentials)",
            operation=operation,
            http_status=status,
        )
    if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), (int, str)):
        snippet = redact_text(raw[:80].decode("utf-8", "replace").strip(), _known(secrets))
        if status >= 500:  # a proxy's or gateway's page: the service may be back soon
            raise HTTPStatusError(
                f"HTTP {status} {reason} without an API reply from {redact_url(url)}",
                operation=operation,
                http_status=status,
            )
        # Any other reply without the envelope: the URL is not the API's.
        raise (HTTPStatusError if status >= 400 else ProtocolError)(
            f"{redact_url(url)} answered HTTP {status} {reason} with {snippet!r}, not an API "
            f"envelope: it is not a MioCreate API; {BASE_URL_HINT} and Config.paths",
            operation=operation,
            http_status=status,
        )
    from ._converter import strict_int  # loaded with the first client already

    try:
        code = strict_int(envelope["code"])  # a JSON true is no code 1
    except (TypeError, ValueError):
        raise ProtocolError(
            f"bad envelope code {redact_text(str(envelope['code'])[:40], _known(secrets))!r}",
            operation=operation,
        ) from None
    if code != 200:
        message = redact_text(str(envelope.get("message") or "")[:2000], _known(secrets))
        raise error_for_code(code, message, operation=operation, http_status=status)
    return envelope.get("data")


_TOKEN = Operation.TOKEN.value


def _json(raw: bytes) -> Any:
    """The reply's JSON, or None. Decoded as UTF-8 first (what JSON replies are: the encoding
    is not sniffed), then as ``json.loads`` reads bytes (a BOM, UTF-16)."""
    try:
        return json.loads(raw.decode())
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        pass
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _known(secrets: Callable[[], list[str]] | None) -> list[str]:
    return secrets() if secrets is not None else []
