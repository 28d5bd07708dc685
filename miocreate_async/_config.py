"""Settings: base URL, the paths table, timeouts, limits, and defaults from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from ._errors import ConfigurationError
from ._operations import DEFAULT_PATHS, Operation
from ._retry import RetryPolicy
from ._version import __version__

__all__ = ["DEFAULT_BASE_URL", "Config", "PollSchedule"]

DEFAULT_BASE_URL = "https://devapi.miocreate.com"
USER_AGENT = f"miocreate-async/{__version__}"


def _paths(value: Mapping[Operation | str, str] | None) -> Mapping[Operation, str]:
    merged = dict(DEFAULT_PATHS)
    for name, path in (value or {}).items():
        try:
            operation = Operation(name)
        except ValueError:
            known = ", ".join(op.value for op in Operation)
            raise ConfigurationError(
                f"unknown operation {name!r} in paths; known: {known}"
            ) from None
        merged[operation] = "/" + path.lstrip("/")
    return merged


def _base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


@attrs.frozen
class PollSchedule:
    """How ``wait()`` polls a task: soon at first, then slower, up to a cap."""

    first: float = 0.5
    multiplier: float = 1.5
    maximum: float = 5.0

    def delay(self, polls_done: int) -> float:
        return min(self.maximum, self.first * self.multiplier**polls_done)


@attrs.frozen(kw_only=True)
class Config:
    """Every setting of a client. Unconfirmed parts of the API (paths, the task detail method,
    the token scheme) are settings here, with the documented guess as default."""

    base_url: str = attrs.field(default=DEFAULT_BASE_URL, converter=_base_url)
    paths: Mapping[Operation, str] = attrs.field(default=None, converter=_paths)
    #: "POST" with a JSON body, or "GET" with ``?id=``; the emulator answers both.
    task_detail_method: str = attrs.field(
        default="POST", validator=attrs.validators.in_(("POST", "GET"))
    )
    auth_scheme: str = "Bearer"
    #: Deadline of one API request (not of uploads, which use ``stall_timeout``).
    timeout: float = 30.0
    connect_timeout: float = 10.0
    #: An upload or download fails when no byte moved for this long.
    stall_timeout: float = 60.0
    retry: RetryPolicy = RetryPolicy()
    poll: PollSchedule = PollSchedule()
    #: Simultaneous uploads and downloads of one client.
    max_concurrent_transfers: int = 8
    #: Connection pool size of the client's own aiohttp session.
    max_connections: int = 100
    #: Client-wide API requests per second (None: no limit), to stay under a quota.
    rate_limit: float | None = None
    #: Seconds before expiry at which a token is refreshed.
    token_refresh_margin: float = 60.0
    #: How long result URLs stay valid after completion.
    result_ttl: timedelta = timedelta(days=7)
    user_agent: str = USER_AGENT

    def url(self, operation: Operation) -> str:
        return self.base_url + self.paths[operation]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Defaults, then ``MIOCREATE_BASE_URL`` from the environment, then ``overrides``."""
        env = os.environ if environ is None else environ
        if env.get("MIOCREATE_BASE_URL") and "base_url" not in overrides:
            overrides["base_url"] = env["MIOCREATE_BASE_URL"]
        return cls(**overrides)
