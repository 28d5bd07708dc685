"""Object keys in the shapes the service hands out."""

from __future__ import annotations

import time
import uuid

__all__ = ["asset_key", "temporary_key"]

# The page's keys carry a numeric account id; the emulator has one account.
_ACCOUNT = "133902"


def _unique(now: float, extension: str) -> str:
    token = uuid.uuid4().hex
    dashed = f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:]}"
    return f"{int(now * 1000)}-{dashed}.{extension}"


def temporary_key(now: float, extension: str) -> str:
    """An uploaded file or a detected face: ``temporary/20240816/133902/<ms>-<uuid>.jpg``."""
    day = time.strftime("%Y%m%d", time.gmtime(now))
    return f"temporary/{day}/{_ACCOUNT}/{_unique(now, extension)}"


def asset_key(now: float, extension: str) -> str:
    """A task's result: ``133902/asset/202408/<ms>-<uuid>.png``."""
    return f"{_ACCOUNT}/asset/{time.strftime('%Y%m', time.gmtime(now))}/{_unique(now, extension)}"
