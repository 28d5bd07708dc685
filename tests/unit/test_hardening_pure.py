"""Issue 11, pure rules: redaction, brands, backoff, settings, reprs, strict inputs."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from miocreate_async import (
    Config,
    ConfigurationError,
    InvalidInputError,
    Key,
    MioCreateError,
    PollSchedule,
    RetryPolicy,
    StreamSource,
    SubmissionUncertainError,
    UnsupportedFormatError,
)
from miocreate_async._formats import sniff
from miocreate_async._presigned import url_expires_at
from miocreate_async._redact import redact_url

# --- item 18: every presigned style the client reads is redacted --------------------------------


@pytest.mark.parametrize(
    ("query", "secret"),
    [
        ("X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=deadbeefcafe", "deadbeefcafe"),
        ("X-Goog-Credential=svc%40proj.iam.gserviceaccount.com%2F2026", "svc"),
        ("q-sign-algorithm=sha1&q-ak=AKIDxx&q-signature=feedface1234", "feedface1234"),
        ("x-goog-signature=lowercase0001", "lowercase0001"),
        ("X-Amz-Signature=amzsig0002", "amzsig0002"),
    ],
)
def test_redact_url_covers_gcs_and_cos(query: str, secret: str) -> None:
    shown = redact_url(f"https://storage.example.com/bucket/o.jpg?{query}")
    assert secret not in shown
    assert "storage.example.com/bucket/o.jpg" in shown


# --- item 24: the format check knows its brands -------------------------------------------------


def _ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x20ftyp" + brand + b"\x00\x00\x00\x00" + b"isom" * 4


@pytest.mark.parametrize("brand", [b"M4A ", b"M4B ", b"heic", b"heix", b"mif1", b"avif", b"avis"])
def test_audio_and_still_image_brands_are_not_mp4(brand: bytes) -> None:
    assert sniff(_ftyp(brand)) is None


@pytest.mark.parametrize("brand", [b"isom", b"mp42", b"M4V ", b"qt  ", b"avc1", b"iso5"])
def test_video_brands_stay_mp4(brand: bytes) -> None:
    found = sniff(_ftyp(brand))
    assert found is not None
    assert found.is_video


# --- item 5: Retry-After is a lower bound on the jittered backoff --------------------------------


def test_retry_after_zero_never_shortens_the_backoff() -> None:
    policy = RetryPolicy(jitter=False)
    for retry in range(1, 6):
        assert policy.backoff(retry, 0.0) >= policy.backoff(retry)
        assert policy.backoff(retry, 0.0) > 0


def test_retry_after_longer_than_backoff_is_waited() -> None:
    policy = RetryPolicy(jitter=True, initial=0.01, maximum=0.02)
    assert all(policy.backoff(1, 3.0) >= 3.0 for _ in range(50))


def test_jittered_backoff_has_a_floor() -> None:
    policy = RetryPolicy()
    # Full jitter may draw 0: a crowd retrying at once. Never a zero wait.
    assert min(policy.backoff(1, 0.0) for _ in range(500)) > 0


# --- item 11: settings are validated where they are made ----------------------------------------


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


# --- item 23: reprs abbreviate bytes ------------------------------------------------------------


def test_swap_job_and_outcome_reprs_abbreviate_bytes() -> None:
    from miocreate_async import SwapJob, SwapOutcome

    data = b"\xff\xd8\xff" + b"x" * (5 << 20)
    job = SwapJob(image=data, face=bytearray(data))
    assert len(repr(job)) < 500
    assert str(len(data)) in repr(job)
    outcome = SwapOutcome(job=job, index=3)
    assert len(repr(outcome)) < 1000


# --- item 19: hd is a bool ----------------------------------------------------------------------


@pytest.mark.parametrize("hd", ["no", "yes", 1, 0, None, 2.0])
def test_swap_job_refuses_non_bool_hd(hd: object) -> None:
    from miocreate_async import SwapJob

    with pytest.raises(InvalidInputError):
        SwapJob(image=Key("a/b.jpg"), face=Key("a/c.jpg"), hd=hd)  # type: ignore[arg-type]


# --- item 14: a StreamSource says what is wrong with it, typed ----------------------------------


async def _chunks() -> object:
    yield b"x"


@pytest.mark.parametrize("size", ["10", 1.5, None, True])
def test_stream_source_refuses_non_int_size(size: object) -> None:
    with pytest.raises(InvalidInputError):
        StreamSource(_chunks(), size, "a.jpg")  # type: ignore[arg-type]


# --- item 8: an absurd X-Amz-Expires is clamped, never a crash ----------------------------------


@pytest.mark.parametrize(
    "expires", ["99999999999999999999", "1e9", "-5", "nan", "604800.5", "0x10"]
)
def test_url_expiry_of_absurd_values(expires: str) -> None:
    url = f"https://s.example/o.jpg?X-Amz-Date=20260101T000000Z&X-Amz-Expires={expires}"
    at = url_expires_at(url)
    if at is not None:
        # Usable as a datetime, and never later than SigV4's own maximum of 7 days.
        when = datetime.fromtimestamp(at, timezone.utc)
        assert when <= datetime(2026, 1, 8, tzinfo=timezone.utc)


@pytest.mark.parametrize("date", ["99991399T999999Z", "00000000T000000Z", "2026010xT000000Z"])
def test_url_expiry_of_bad_dates(date: str) -> None:
    at = url_expires_at(f"https://s.example/o?X-Amz-Date={date}&X-Amz-Expires=60")
    if at is not None:
        datetime.fromtimestamp(at, timezone.utc)


# --- item 28: the uncertain error says the API cannot list tasks --------------------------------


def test_typed_errors_are_mioCreate_errors() -> None:
    assert issubclass(UnsupportedFormatError, MioCreateError)
    assert "list" in (SubmissionUncertainError.__doc__ or "")
