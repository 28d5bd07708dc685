"""Settings: base URL, the paths table, timeouts, limits, and defaults from the environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from ._addresses import UrlSources, url_sources
from ._checks import at_least, finite
from ._errors import ConfigurationError
from ._operations import DEFAULT_PATHS, Operation
from ._retry import RetryPolicy
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "IMAGE_TIMEOUT",
    "VIDEO_TIMEOUT",
    "Config",
    "Environment",
    "PollPolicy",
    "PollSchedule",
]

DEFAULT_BASE_URL = "https://devapi.miocreate.com"
USER_AGENT = f"miocreate-async/{__version__}"

#: How long a task is waited for when no ``timeout`` is given: an image swap or a face detection
#: ends in seconds to minutes, a video swap may take many minutes.
IMAGE_TIMEOUT = 600.0
VIDEO_TIMEOUT = 1800.0
#: Seconds a URL input may take beyond its size at ``Config.source_min_rate`` (to connect).
SOURCE_GRACE = 30.0


@attrs.frozen
class Environment:
    """The settings read from the environment: the one place that reads it."""

    base_url: str | None = None
    token: str | None = attrs.field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = attrs.field(default=None, repr=False)
    #: ``MIOCREATE_URL_SOURCES``: networks and hosts (comma-separated) or ``any``.
    url_sources: str | None = None

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Environment:
        env = os.environ if environ is None else environ
        return cls(
            base_url=env.get("MIOCREATE_BASE_URL") or None,
            token=env.get("MIOCREATE_TOKEN") or None,
            client_id=env.get("MIOCREATE_CLIENT_ID") or None,
            client_secret=env.get("MIOCREATE_CLIENT_SECRET") or None,
            url_sources=env.get("MIOCREATE_URL_SOURCES") or None,
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self.token or (self.client_id and self.client_secret))


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


def _names(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


_positive = finite(above=0.0)


def _instance(cls: type, name: str) -> Any:
    def check(_: object, attribute: Any, value: object) -> None:
        if not isinstance(value, cls):
            raise ConfigurationError(f"{attribute.name} must be a {name}, got {value!r}")

    return check


def _optional(validator: Any) -> Any:
    def check(instance: object, attribute: Any, value: object) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return check


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How tasks are polled (all in seconds): by ``wait()``, and by the batch's shared poller.

    ``wait()`` polls after ``first``, then each gap ``multiplier`` times the previous one, up to
    ``maximum``. The batch's poller spaces each task's polls by the task's age (``ratio``,
    ``minimum``, ``maximum``) and learns how long tasks take (``adaptive``).
    """

    #: The first poll of a task, this long after its creation (until its kind's durations are
    #: learnt, with ``adaptive``).
    first: float = attrs.field(default=0.5, validator=_positive)
    #: ``wait()``: each gap is this many times the previous one...
    multiplier: float = attrs.field(default=1.5, validator=finite(at_least=1.0))
    #: The batch: until a task's kind is learnt, each later poll comes ``ratio`` times the
    #: task's age after the previous one (as ``wait()``'s growing gaps), at most two
    #: ``settle`` apart...
    ratio: float = attrs.field(default=0.5, validator=_positive)
    #: ...but never sooner than ``minimum``...
    minimum: float = attrs.field(default=0.1, validator=_positive)
    #: ...nor later than ``maximum`` (nor, in ``wait()``, any gap).
    maximum: float = attrs.field(default=5.0, validator=_positive)
    #: Learn each kind's durations: the first poll then comes just before the quickest usual
    #: end: the ``quantile`` of the durations seen once ``learn_after`` tasks of the kind
    #: ended; before that the shortest seen, or as long as ``learn_after`` tasks of the kind
    #: have been seen running (none of them ended sooner). A client keeps what it learnt from
    #: one batch to the next.
    adaptive: bool = True
    quantile: float = attrs.field(default=0.05, validator=finite(at_least=0.0))
    learn_after: int = attrs.field(default=8, validator=at_least(0))
    #: With ``adaptive``, once a task is past its kind's quickest usual end it may end at any
    #: moment: it is then polled every ``settle`` seconds, so that its end is seen soon (half
    #: a gap late on average: 0.25 s keeps a batch within 1.05x of its ideal wall time).
    settle: float = attrs.field(default=0.25, validator=_positive)
    #: Poll requests in flight at once, whatever the number of tasks.
    concurrency: int = attrs.field(default=32, validator=at_least(1))

    def delay(self, polls_done: int) -> float:
        """``wait()``: seconds before the next poll, after ``polls_done`` polls."""
        return min(self.maximum, self.first * self.multiplier**polls_done)

    def gap(self, age: float) -> float:
        """The batch: seconds from one poll of a task ``age`` seconds old to the next, while
        its kind is not learnt."""
        return min(self.maximum, 2 * self.settle, max(self.minimum, self.ratio * age))


#: The name ``wait()``'s schedule had before it was one type with the batch's poll policy.
PollSchedule = PollPolicy


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
    timeout: float = attrs.field(default=30.0, validator=_positive)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: An upload or download fails when no byte moved for this long.
    stall_timeout: float = attrs.field(default=60.0, validator=_positive)
    retry: RetryPolicy = attrs.field(
        default=RetryPolicy(), validator=_instance(RetryPolicy, "RetryPolicy")
    )
    poll: PollPolicy = attrs.field(
        default=PollPolicy(), validator=_instance(PollPolicy, "PollPolicy")
    )
    #: Simultaneous uploads and downloads of one client.
    max_concurrent_transfers: int = attrs.field(default=8, validator=at_least(1))
    #: Connection pool size of the client's own aiohttp session.
    max_connections: int = attrs.field(default=100, validator=at_least(1))
    #: Client-wide API requests per second (None: no limit), to stay under a quota.
    rate_limit: float | None = attrs.field(default=None, validator=_optional(_positive))
    #: With no ``rate_limit``: slow down on each refusal for the request quota (code 802) and
    #: speed up again while none come, so that a quota nobody told the client is found.
    adapt_rate: bool = True
    #: Seconds before expiry at which a token is refreshed.
    token_refresh_margin: float = attrs.field(default=60.0, validator=finite(at_least=0.0))
    #: How long result URLs stay valid after completion.
    result_ttl: timedelta = timedelta(days=7)
    user_agent: str = USER_AGENT
    #: Where URL inputs may be read from besides global addresses: networks and host names
    #: (``["10.0.0.0/8", "files.internal"]``), or ``"any"``. By default a URL input that
    #: reaches a loopback, private, link-local or other non-global address is refused.
    url_sources: UrlSources = attrs.field(default=None, converter=url_sources)
    #: Reading a URL input (each time: the check, then the upload) ends within this deadline...
    source_timeout: float = attrs.field(default=1800.0, validator=_positive)
    #: ...and within 30 s plus its size at this rate (bytes per second): a source that drips
    #: its bytes fails with ``SourceTooSlowError``.
    source_min_rate: float = attrs.field(default=64 * 1024, validator=_positive)
    #: Reply headers holding the service's request id (the first present is used), put on
    #: errors, results and log records.
    request_id_headers: tuple[str, ...] = attrs.field(
        default=("x-request-id", "cf-ray"), converter=_names
    )

    def url(self, operation: Operation) -> str:
        return self.base_url + self.paths[operation]

    def source_deadline(self, size: int) -> float:
        """Seconds that reading ``size`` bytes of a URL input may take at most."""
        return min(self.source_timeout, SOURCE_GRACE + size / self.source_min_rate)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Defaults, then ``MIOCREATE_BASE_URL`` and ``MIOCREATE_URL_SOURCES`` from the
        environment, then ``overrides``."""
        env = Environment.read(environ)
        if env.base_url and "base_url" not in overrides:
            overrides["base_url"] = env.base_url
        if env.url_sources and "url_sources" not in overrides:
            overrides["url_sources"] = env.url_sources
        return cls(**overrides)


#: ``MIOCREATE_LOG`` values: requests and retries (debug), calls and retries (info).
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_log_handler: logging.Handler | None = None


def log_from_env(environ: Mapping[str, str] | None = None) -> None:
    """Switch the library's log on from ``MIOCREATE_LOG=debug|info`` (to stderr; redacted, as
    every message of the library). Applications with their own logging set-up need not: the
    logger is ``miocreate_async``."""
    global _log_handler
    env = os.environ if environ is None else environ
    value = env.get("MIOCREATE_LOG", "").strip().lower()
    if not value:
        return
    level = LOG_LEVELS.get(value)
    if level is None:
        raise ValueError(f"MIOCREATE_LOG must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    logger = logging.getLogger("miocreate_async")
    logger.setLevel(level)
    if _log_handler is None:
        _log_handler = logging.StreamHandler()
        _log_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        logger.addHandler(_log_handler)
