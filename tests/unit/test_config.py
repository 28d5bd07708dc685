"""Settings are validated where they are made: ``Config``, ``RetryPolicy``, ``PollSchedule`` and
``PollPolicy`` refuse bad values with a typed error."""

from __future__ import annotations

import math

import pytest

from miocreate_async import (
    Config,
    ConfigurationError,
    InvalidInputError,
    PollSchedule,
    RetryPolicy,
)


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf])
@pytest.mark.parametrize("name", ["timeout", "connect_timeout", "stall_timeout"])
def test_config_refuses_bad_durations(name: str, value: float) -> None:
    with pytest.raises(ConfigurationError):
        Config(**{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [
        {"max_concurrent_transfers": 0},
        {"max_concurrent_transfers": 1.5},
        {"max_connections": 0},
        {"rate_limit": 0},
        {"rate_limit": math.nan},
        {"token_refresh_margin": math.nan},
        {"token_refresh_margin": -1},
        {"timeout": "30"},
    ],
)
def test_config_refuses_bad_limits(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Config(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [
        {"attempts": 0},
        {"initial": -1},
        {"maximum": -0.5},
        {"initial": math.nan},
        {"maximum": math.inf},
        {"multiplier": 0},
        {"max_retry_after": math.nan},
    ],
)
def test_retry_policy_refuses_bad_values(settings: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("settings", [{"first": 0}, {"maximum": math.nan}, {"multiplier": -1}])
def test_poll_schedule_refuses_bad_values(settings: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        PollSchedule(**settings)  # type: ignore[arg-type]


def test_poll_policy_refuses_nan() -> None:
    from miocreate_async import PollPolicy

    for name in ("first", "ratio", "minimum", "maximum", "settle"):
        with pytest.raises((ConfigurationError, InvalidInputError)):
            PollPolicy(**{name: math.nan})  # type: ignore[arg-type]


def test_good_settings_still_work() -> None:
    config = Config(timeout=5, stall_timeout=0.5, max_concurrent_transfers=1, rate_limit=2.5)
    assert config.timeout == 5
    assert RetryPolicy(attempts=1).attempts == 1
