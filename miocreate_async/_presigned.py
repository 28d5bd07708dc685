"""What a presigned (SigV4-style) URL says about itself: when it stops working."""

from __future__ import annotations

import re
from calendar import timegm

__all__ = ["url_expires_at"]

# Read straight from the URL: parsing the whole query costs more than the rest of a poll.
_PARAM = re.compile(r"[?&]x-(?:amz|goog)-(date|expires)=([^&#]*)", re.IGNORECASE)


def url_expires_at(url: str) -> float | None:
    """Epoch seconds at which the URL expires (``X-Amz-Date`` + ``X-Amz-Expires``), or None
    when the URL does not say."""
    found = {name.lower(): value for name, value in _PARAM.findall(url)}
    date, expires = found.get("date"), found.get("expires")
    if not date or not expires or len(date) != 16 or date[8] != "T" or date[15] != "Z":
        return None
    try:
        signed = timegm(
            (int(date[:4]), int(date[4:6]), int(date[6:8]), int(date[9:11]), int(date[11:13]),
             int(date[13:15]), 0, 0, 0)
        )  # fmt: skip
        return signed + int(expires)
    except ValueError:
        return None
