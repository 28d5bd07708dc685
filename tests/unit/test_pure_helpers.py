"""Table-driven tests of the pure helpers: retry maths, Retry-After, format rules, redaction and
presigned URL expiry. No I/O, no event loop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from miocreate_async import RetryPolicy
from miocreate_async._formats import MediaType, media_type_of_name, sniff
from miocreate_async._presigned import url_expires_at
from miocreate_async._redact import REDACTED, redact_url
from miocreate_async._retry import parse_retry_after

EXACT = RetryPolicy(attempts=5, initial=0.25, multiplier=2.0, maximum=8.0, jitter=False)


@pytest.mark.parametrize(
    ("retry", "retry_after", "expected"),
    [
        (1, None, 0.25),
        (2, None, 0.5),
        (3, None, 1.0),
        (6, None, 8.0),  # capped at maximum
        (50, None, 8.0),
        (1, 3.0, 3.0),  # a longer Retry-After is waited...
        (4, 0.0, 2.0),  # ...a shorter one is a lower bound, never a shortcut
        (1, 120.0, 60.0),  # but never beyond max_retry_after
    ],
)
def test_backoff(retry: int, retry_after: float | None, expected: float) -> None:
    assert EXACT.backoff(retry, retry_after) == pytest.approx(expected)


@pytest.mark.parametrize("retry", [1, 2, 3, 8, 20])
def test_backoff_with_jitter_stays_under_the_exact_wait(retry: int) -> None:
    jittered = RetryPolicy(initial=0.25, multiplier=2.0, maximum=8.0, jitter=True)
    for _ in range(50):
        assert 0 <= jittered.backoff(retry) <= EXACT.backoff(retry)


@pytest.mark.parametrize(
    ("attempts", "failures", "retry_after", "allowed"),
    [
        (5, 0, None, True),
        (5, 4, None, True),
        (5, 5, None, False),  # the fifth try was the last
        (5, 9, None, False),
        (1, 1, None, False),  # attempts=1 switches retries off
        (5, 1, 60.0, True),  # a Retry-After up to max_retry_after is waited for
        (5, 1, 60.5, False),  # a longer one is not
    ],
)
def test_allows(attempts: int, failures: int, retry_after: float | None, allowed: bool) -> None:
    assert RetryPolicy(attempts=attempts).allows(failures, retry_after) is allowed


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),  # never negative
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_reads_a_future_http_date() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=120)
    seconds = parse_retry_after(format_datetime(when, usegmt=True))
    assert seconds is not None
    assert 100 < seconds <= 120


@pytest.mark.parametrize(
    ("head", "media"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", MediaType.JPEG),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", MediaType.PNG),
        (b"GIF89a\x01\x00", MediaType.GIF),
        (b"GIF87a\x01\x00", MediaType.GIF),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", MediaType.WEBP),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", MediaType.MP4),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", MediaType.MP4),  # MOV
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", MediaType.WEBM),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"%PDF-1.7", None),
        (b"", None),
    ],
)
def test_sniff(head: bytes, media: MediaType | None) -> None:
    assert sniff(head) is media


@pytest.mark.parametrize(
    ("name", "media"),
    [
        ("photo.jpg", MediaType.JPEG),
        ("PHOTO.JPEG", MediaType.JPEG),
        ("a.b.png", MediaType.PNG),
        ("anim.gif", MediaType.GIF),
        ("x.webp", MediaType.WEBP),
        ("clip.mp4", MediaType.MP4),
        ("clip.M4V", MediaType.MP4),
        ("clip.mov", MediaType.MP4),
        ("clip.webm", MediaType.WEBM),
        ("folder/key/face.png", MediaType.PNG),
        ("notes.txt", None),
        ("jpg", None),  # no dot: no extension
        ("archive.jpg.zip", None),
        ("", None),
    ],
)
def test_media_type_of_name(name: str, media: MediaType | None) -> None:
    assert media_type_of_name(name) is media


@pytest.mark.parametrize(
    ("media", "is_video", "extension", "content_type"),
    [
        (MediaType.JPEG, False, "jpg", "image/jpeg"),
        (MediaType.PNG, False, "png", "image/png"),
        (MediaType.WEBP, False, "webp", "image/webp"),
        (MediaType.GIF, False, "gif", "image/gif"),
        (MediaType.MP4, True, "mp4", "video/mp4"),
        (MediaType.WEBM, True, "webm", "video/webm"),
    ],
)
def test_media_type_properties(
    media: MediaType, is_video: bool, extension: str, content_type: str
) -> None:
    assert (media.is_video, media.extension, media.content_type) == (
        is_video,
        extension,
        content_type,
    )


SIGNED = (
    "https://bucket.example.com/in/a.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIA%2F20250101%2Fauto%2Fs3&X-Amz-Date=20250101T000000Z"
    "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=abcdef0123"
)


@pytest.mark.parametrize(
    ("url", "hidden", "kept"),
    [
        (SIGNED, ["abcdef0123", "AKIA"], ["X-Amz-Date=20250101T000000Z", "/in/a.jpg"]),
        ("https://cdn.example.com/r.jpg?token=s3cret&w=1", ["s3cret"], ["w=1"]),
        (
            "https://cdn.example.com/r.jpg?Signature=x1&Key-Pair-Id=k2&Policy=p3",
            ["x1", "k2", "p3"],
            [],
        ),
        ("https://user:pass@host.example.com/p", ["user", "pass"], ["host.example.com/p"]),
        ("https://host.example.com/p?size=2", [], ["size=2"]),
    ],
)
def test_redact_url(url: str, hidden: list[str], kept: list[str]) -> None:
    shown = redact_url(url)
    for secret in hidden:
        assert secret not in shown
    for part in kept:
        assert part in shown
    if hidden:
        assert REDACTED in shown


@pytest.mark.parametrize("url", ["", "http://[::1"])
def test_redact_url_of_odd_input(url: str) -> None:
    assert redact_url(url) in ("", REDACTED)


@pytest.mark.parametrize(
    ("url", "expires_at"),
    [
        (SIGNED, 1735689600 + 3600),
        ("https://h/x?x-amz-date=20250101T000000Z&x-amz-expires=60", 1735689600 + 60),
        ("https://h/x?X-Goog-Date=20250101T000000Z&X-Goog-Expires=10", 1735689600 + 10),
        ("https://h/x?X-Amz-Date=20250101T000000Z", None),  # no lifetime
        ("https://h/x?X-Amz-Expires=60", None),  # no signing date
        ("https://h/x?X-Amz-Date=2025-01-01&X-Amz-Expires=60", None),  # malformed date
        ("https://h/x?X-Amz-Date=20250101T000000Z&X-Amz-Expires=soon", None),
        ("https://h/x", None),
    ],
)
def test_url_expires_at(url: str, expires_at: float | None) -> None:
    assert url_expires_at(url) == expires_at


# --- every presigned style the client reads is redacted -----------------------------------------


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


# --- the format check knows its brands ----------------------------------------------------------


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


# --- Retry-After is a lower bound on the jittered backoff ----------------------------------------


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


# --- an absurd X-Amz-Expires is clamped, never a crash ------------------------------------------


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
