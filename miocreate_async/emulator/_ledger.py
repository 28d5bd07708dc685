"""What happened: requests (redacted), uploads, leaks and credits, for tests and benchmarks."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

from .._redact import redact_headers, redact_url

__all__ = ["Ledger", "RequestRecord", "UploadRecord"]


@attrs.define
class RequestRecord:
    method: str
    path: str
    #: An Operation value, "storage_put" or "storage_get".
    operation: str
    time: float
    headers: dict[str, str]
    status: int | None = None
    #: The envelope's code, for API requests answered with one.
    code: int | None = None
    #: The fault injected, if any: "cut", "cut_after", "slow", "fail", "html502", "http".
    fault: str | None = None
    #: The ``x-request-id`` the reply carried (API requests), as the service's gateway sends.
    request_id: str | None = None


@attrs.define
class UploadRecord:
    key: str
    file_name: str
    created_at: float
    expires_at: float
    #: "pending" until a PUT succeeds, then "stored"; "incomplete" after a short body.
    status: str = "pending"
    size: int | None = None
    sha256: str | None = None
    content_length: int | None = None
    media_type: str | None = None


class Ledger:
    def __init__(self, max_requests: int) -> None:
        self._max_requests = max_requests
        self.reset()

    def reset(self) -> None:
        self.requests: deque[RequestRecord] = deque(maxlen=self._max_requests)
        self.requests_total = 0
        self.uploads: dict[str, UploadRecord] = {}
        self.leaks: list[dict[str, Any]] = []
        self.credits_spent = 0

    def request(
        self, method: str, path_qs: str, operation: str, time: float, headers: Mapping[str, str]
    ) -> RequestRecord:
        record = RequestRecord(
            method, redact_url(path_qs), operation, time, redact_headers(dict(headers))
        )
        self.requests.append(record)
        self.requests_total += 1
        return record

    def leak(self, record: RequestRecord) -> None:
        """A storage request carried an Authorization header: the API token went to storage."""
        self.leaks.append(
            {
                "method": record.method,
                "path": record.path,
                "operation": record.operation,
                "time": record.time,
                "headers": record.headers,
            }
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "uploads": [attrs.asdict(upload) for upload in self.uploads.values()],
            "requests": [attrs.asdict(record) for record in self.requests],
            "requests_total": self.requests_total,
            "leaks": list(self.leaks),
            "credits_spent": self.credits_spent,
        }
