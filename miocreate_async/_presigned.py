"""What a presigned (SigV4-style) URL says about itself: when it stops working."""

from __future__ import annotations

import functools
import re
import sys
from datetime import datetime, timedelta, timezone

__all__ = ["url_expires_at", "url_expiry"]

_ISO_BASIC = sys.version_info >= (3, 11)
#: The longest life of a SigV4 (and GCS V4) presigned URL: 7 days.
MAX_EXPIRES = 7 * 24 * 3600

# The other spellings (lower case, Google's x-goog-), found by a scan of the whole URL.
_PARAM = re.compile(r"[?&]x-(?:amz|goog)-(date|expires)=([^&#]*)", re.IGNORECASE)


def url_expiry(url: str) -> datetime | None:
    """When the URL stops working (``X-Amz-Date`` + ``X-Amz-Expires``), or None when the URL
    does not say. Read on every result: plain string searches, no query parsing."""
    date, expires = _param(url, "X-Amz-Date="), _param(url, "X-Amz-Expires=")
    if date is None or expires is None:
        found = {name.lower(): value for name, value in _PARAM.findall(url)}
        date, expires = found.get("date"), found.get("expires")
    if not date or not expires:
        return None
    return _expiry(date, expires)


@functools.lru_cache(maxsize=256)
def _expiry(date: str, expires: str) -> datetime | None:
    """The expiry of URLs signed at ``date`` for ``expires`` seconds: the results polled in
    one second share both, so each pair is parsed once."""
    if len(date) != 16 or date[8] != "T" or date[15] != "Z" or not expires.isdecimal():
        return None
    try:
        # SigV4 and GCS V4 URLs live at most 7 days: a longer claim is read as the longest.
        return _signed_at(date) + timedelta(seconds=min(int(expires), MAX_EXPIRES))
    except (ValueError, OverflowError):
        return None


def _signed_at(date: str) -> datetime:
    """``YYYYMMDDTHHMMSSZ`` as a datetime: ``fromisoformat`` reads it from Python 3.11 on (a
    quarter of the time of building it from its fields), which 3.10 still does."""
    if _ISO_BASIC:
        return datetime.fromisoformat(date)
    return datetime(
        int(date[:4]), int(date[4:6]), int(date[6:8]), int(date[9:11]), int(date[11:13]),
        int(date[13:15]), tzinfo=timezone.utc,
    )  # fmt: skip


def url_expires_at(url: str) -> float | None:
    """``url_expiry`` in epoch seconds."""
    expiry = url_expiry(url)
    return None if expiry is None else expiry.timestamp()


def _param(url: str, name: str) -> str | None:
    """The value of query parameter ``name`` (``=`` included) as S3 spells it, or None."""
    start = url.rfind(name)
    if start <= 0 or url[start - 1] not in "?&":
        return None
    start += len(name)
    end = url.find("&", start)
    value = url[start:] if end < 0 else url[start:end]
    return value.partition("#")[0]
