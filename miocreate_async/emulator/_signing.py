"""Presigned URLs in the shape of AWS SigV4 query signing, checked against the emulator's clock.

The signature is an HMAC-SHA256 with an emulator secret over the method, path, date and expiry:
enough to refuse tampered or expired URLs the way an S3 store does.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from ._clock import Clock
from ._s3 import S3Error

__all__ = ["STORAGE_PREFIX", "Signer"]

#: Presigned objects live under this prefix, apart from the API's paths.
STORAGE_PREFIX = "/_storage/"

_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_ACCESS_KEY = "EMULATORACCESSKEY"
_MAX_EXPIRES = 7 * 24 * 3600


class Signer:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._secret = secrets.token_bytes(32)

    def _signature(self, method: str, path: str, date: str, expires: str) -> str:
        message = f"{method}\n{path}\n{date}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, method: str, key: str, ttl: float) -> str:
        """A URL allowing ``method`` on the object ``key`` for ``ttl`` seconds from now."""
        path = STORAGE_PREFIX + key
        date = time.strftime(_DATE_FORMAT, time.gmtime(self._clock.now()))
        expires = str(int(ttl))
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
            "X-Amz-Credential": f"{_ACCESS_KEY}/{date[:8]}/auto/s3/aws4_request",
            "X-Amz-Date": date,
            "X-Amz-Expires": expires,
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self._signature(method, path, date, expires),
        }
        return f"{base_url}{quote(path)}?{urlencode(query)}"

    def check(self, method: str, key: str, query: Mapping[str, str]) -> None:
        """Raise the store's S3Error unless the query signs ``method`` on ``key`` right now."""
        date, expires = query.get("X-Amz-Date"), query.get("X-Amz-Expires")
        signature = query.get("X-Amz-Signature")
        if not (date and expires and signature) or query.get("X-Amz-Algorithm") != (
            "AWS4-HMAC-SHA256"
        ):
            raise S3Error(403, "AccessDenied", "Query-string authentication is required")
        expected = self._signature(method, STORAGE_PREFIX + key, date, expires)
        if not hmac.compare_digest(expected, signature):
            raise S3Error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        try:
            signed_at = calendar.timegm(time.strptime(date, _DATE_FORMAT))
            lifetime = int(expires)
        except ValueError:
            raise S3Error(403, "AccessDenied", "X-Amz-Date or X-Amz-Expires is malformed") from None
        if not 0 < lifetime <= _MAX_EXPIRES:
            raise S3Error(403, "AccessDenied", "X-Amz-Expires must be 1 to 604800 seconds")
        if self._clock.now() > signed_at + lifetime:
            raise S3Error(403, "AccessDenied", "Request has expired")
