"""OpenTelemetry spans and metrics, when ``opentelemetry-api`` is installed (the ``telemetry``
extra); nothing at all otherwise.

Spans: ``miocreate.job`` (a one-call swap, or a batch job), with children ``miocreate.upload``,
``miocreate.create``, ``miocreate.wait`` and ``miocreate.download``; attributes
``miocreate.kind``, ``miocreate.task_id``, ``miocreate.bytes`` and ``miocreate.outcome`` (ok,
failed, uncertain, refused-801). Metrics (meter ``miocreate_async``): ``miocreate.creations``
by outcome, ``miocreate.creations.uncertain``, ``miocreate.refusals.802``,
``miocreate.poll.requests``, ``miocreate.transfer.bytes`` by direction (up, down),
``miocreate.job.duration`` (a histogram, seconds) and ``miocreate.results.expiring`` (results
fetched with less than 24 h left before their URLs expire).

The API is looked up on first use, never by ``import miocreate_async``; without it each hook
is one check of a global. The application chooses the SDK and exporters, as with any library.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._errors import InsufficientCreditsError, SubmissionUncertainError

__all__ = ["Span", "carrier", "count", "outcome_of", "retried", "span"]

#: None: not looked up yet; False: no API; else the instruments.
_state: Any = None


class Span:
    """What a hook may add to its span (a no-op without OpenTelemetry)."""

    __slots__ = ("_span", "outcome")

    def __init__(self, span: Any = None) -> None:
        self._span = span
        #: Set by a block that ends without raising but failed (a batch job's outcome).
        self.outcome: str | None = None

    def set(self, name: str, value: str | int | float) -> None:
        if self._span is not None:
            self._span.set_attribute(f"miocreate.{name}", value)


_NO_SPAN = Span()


def _instruments() -> Any:
    global _state
    if _state is None:
        if importlib.util.find_spec("opentelemetry") is None:
            _state = False
            return _state
        from types import SimpleNamespace

        from opentelemetry import metrics, trace

        from ._version import __version__

        meter = metrics.get_meter("miocreate_async", __version__)
        _state = SimpleNamespace(
            trace=trace,
            tracer=trace.get_tracer("miocreate_async", __version__),
            counters={
                name: meter.create_counter(name, unit=unit, description=description)
                for name, unit, description in (
                    ("miocreate.creations", "{task}", "task creations by outcome"),
                    ("miocreate.creations.uncertain", "{task}", "creations that may exist"),
                    ("miocreate.refusals.802", "{request}", "requests refused for the quota"),
                    ("miocreate.poll.requests", "{request}", "task detail requests"),
                    ("miocreate.transfer.bytes", "By", "bytes uploaded (up) and downloaded"),
                    ("miocreate.results.expiring", "{result}", "results with < 24 h left"),
                )
            },
            job_duration=meter.create_histogram(
                "miocreate.job.duration", unit="s", description="a job, upload to result"
            ),
        )
    return _state


def carrier() -> dict[str, str]:
    """The current trace context as text (``traceparent``...), for a job message that another
    machine turns into its job span's parent; empty without OpenTelemetry."""
    state = _state if _state is not None else _instruments()
    if not state:
        return {}
    from opentelemetry import propagate

    found: dict[str, str] = {}
    propagate.inject(found)
    return found


def count(name: str, value: int = 1, **attributes: str) -> None:
    """Add ``value`` to the counter ``name`` (one of those above)."""
    state = _state if _state is not None else _instruments()
    if state:
        state.counters[name].add(value, attributes)


def retried(attempt: int) -> None:
    """A retry loop's try ``attempt`` (2 and up) begins: the current span says which try it
    ended on (``miocreate.attempt``, 1 unless a retry came)."""
    state = _state if _state is not None else _instruments()
    if state:
        state.trace.get_current_span().set_attribute("miocreate.attempt", attempt)


#: The steps that retry: their spans carry the try they ended on.
_RETRIED_STEPS = frozenset({"miocreate.upload", "miocreate.create", "miocreate.download"})


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, SubmissionUncertainError):
        return "uncertain"
    if isinstance(error, InsufficientCreditsError):
        return "refused-801"
    return "failed"


@contextmanager
def span(
    name: str, *, parent: Mapping[str, str] | None = None, **attributes: str | int | float
) -> Iterator[Span]:
    """``with span("miocreate.upload", bytes=n) as s:`` a span, current for what runs inside;
    its outcome is set on the way out. A job's also times ``miocreate.job.duration``, and a
    creation's counts ``miocreate.creations``. ``parent``: a ``carrier()`` from another
    machine, whose span becomes this one's parent."""
    state = _state if _state is not None else _instruments()
    if not state:
        yield _NO_SPAN
        return
    started = time.monotonic()
    named = {f"miocreate.{key}": value for key, value in attributes.items()}
    if name in _RETRIED_STEPS:
        named["miocreate.attempt"] = 1
    context = None
    if parent:
        from opentelemetry import propagate

        context = propagate.extract(parent)
    with state.tracer.start_as_current_span(
        name,
        context=context,
        attributes=named,
        record_exception=True,
        set_status_on_exception=True,
    ) as current:
        error: BaseException | None = None
        handle = Span(current)
        try:
            yield handle
        except BaseException as raised:
            error = raised
            raise
        finally:
            outcome = handle.outcome or outcome_of(error)
            current.set_attribute("miocreate.outcome", outcome)
            if name == "miocreate.job":
                kind = str(attributes.get("kind", "unknown"))
                state.job_duration.record(
                    time.monotonic() - started, {"outcome": outcome, "kind": kind}
                )
            elif name == "miocreate.create":
                state.counters["miocreate.creations"].add(1, {"outcome": outcome})
                if outcome == "uncertain":
                    state.counters["miocreate.creations.uncertain"].add(1)
