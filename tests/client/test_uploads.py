"""Uploads against the emulator: streaming in flat memory, renewals, retries, local checks."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from aiohttp import web
from fake_service import JPEG, FakeService, envelope, serve_upload_url, storage_url

from miocreate_async import Key, Operation, ProtocolError
from miocreate_async._config import Config
from miocreate_async._errors import (
    EmptySourceError,
    FileTooLargeError,
    InvalidInputError,
    MioCreateError,
    MioCreateTimeoutError,
    SourceNotFoundError,
    StorageError,
    UnsupportedFormatError,
    UrlExpiredError,
)
from miocreate_async._formats import MAX_UPLOAD_BYTES, MediaType
from miocreate_async._models import UploadTarget
from miocreate_async._retry import RetryPolicy
from miocreate_async._transfer._inputs import (
    PreparedUpload,
    StreamSource,
    UploadSource,
    prepare_upload,
)
from miocreate_async._transfer._progress import ProgressMeter
from miocreate_async._transfer._put import put_object
from miocreate_async.emulator import Emulator, write_sample_photo, write_sample_video

pytestmark = pytest.mark.anyio

MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
FAST_RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.05, jitter=False)


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The shared emulator of conftest.py, under this module's short name."""
    return emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Targets:
    """``get_target`` as the client does it (token, then Get file upload URL), counting calls;
    ``queue`` holds URLs to hand out first."""

    def __init__(self, emu: Emulator, http: aiohttp.ClientSession) -> None:
        self._emu, self._http = emu, http
        self._token: str | None = None
        self.calls = 0
        self.queue: list[UploadTarget] = []
        self.edit: Callable[[str], str] | None = None

    async def fresh(self, file_name: str = "upload.mp4") -> UploadTarget:
        if self._token is None:
            credentials = {
                "client_id": self._emu.client_id,
                "client_secret": self._emu.client_secret,
            }
            async with self._http.post(f"{self._emu.url}/v1/oauth/token", json=credentials) as r:
                self._token = (await r.json())["data"]["access_token"]
        async with self._http.post(
            f"{self._emu.url}/v1/source/upload-url",
            json={"file_name": file_name},
            headers={"Authorization": f"Bearer {self._token}"},
        ) as response:
            data = (await response.json())["data"]
        return UploadTarget(upload_url=data["upload_url"], key=data["key"])

    def forget_token(self) -> None:
        self._token = None

    async def __call__(self) -> UploadTarget:
        self.calls += 1
        target = self.queue.pop(0) if self.queue else await self.fresh()
        if self.edit is not None:
            target = UploadTarget(upload_url=self.edit(target.upload_url), key=target.key)
        return target


@pytest.fixture
def targets(emu: Emulator, http: aiohttp.ClientSession) -> Targets:
    return Targets(emu, http)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def without_query(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != name]
    return urlunsplit(parts._replace(query=urlencode(query)))


def storage_requests(emu: Emulator, method: str = "PUT") -> list[dict[str, Any]]:
    return [
        r
        for r in emu.ledger["requests"]
        if r["operation"].startswith("storage_") and r["method"] == method
    ]


def stored(emu: Emulator, key: str) -> dict[str, Any]:
    (upload,) = [u for u in emu.ledger["uploads"] if u["key"] == key]
    assert isinstance(upload, dict)
    return upload


async def put(
    http: aiohttp.ClientSession,
    upload: PreparedUpload,
    targets: Callable[[], Awaitable[UploadTarget]],
    config: Config | None = None,
    **kwargs: Any,
) -> str:
    return await put_object(
        http,
        upload,
        get_target=targets,
        config=config or Config(retry=FAST_RETRY),
        limiter=anyio.CapacityLimiter(4),
        **kwargs,
    )


def sparse_mp4(path: Path, size: int) -> Path:
    with path.open("wb") as file:
        file.write(MP4_HEAD)
        file.truncate(size)  # a hole: no disk space, no memory
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class PeakRss:
    """Samples this process's resident memory in a thread while the block runs."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.baseline = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


# --- streaming --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc for RSS")
async def test_500_mb_upload_streams_in_flat_memory(
    tmp_path: Path, emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    video = sparse_mp4(tmp_path / "big.mp4", MAX_UPLOAD_BYTES)  # exactly the limit: accepted
    expected = await anyio.to_thread.run_sync(sha256_of, video)
    calls: list[tuple[int, int | None]] = []
    prepared = await prepare_upload(video)
    started = time.perf_counter()
    with PeakRss() as memory:
        key = await put(
            http, prepared, targets, progress=lambda done, total: calls.append((done, total))
        )
    elapsed = time.perf_counter() - started
    print(f"\n500 MB upload: {elapsed:.2f} s, peak RSS growth {memory.growth / 2**20:.1f} MB")

    assert memory.growth < 32 * 2**20
    upload = stored(emu, key)
    assert upload["status"] == "stored"
    assert upload["sha256"] == expected
    assert upload["size"] == upload["content_length"] == MAX_UPLOAD_BYTES
    (request,) = storage_requests(emu)
    assert request["headers"]["Content-Length"] == str(MAX_UPLOAD_BYTES)
    assert "Transfer-Encoding" not in request["headers"]
    assert "Authorization" not in request["headers"]
    assert emu.ledger["leaks"] == []
    # Bounded rate: about 10 a second, plus the final call with the total.
    assert calls[-1] == (MAX_UPLOAD_BYTES, MAX_UPLOAD_BYTES)
    assert len(calls) <= elapsed * 10 + 3
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    "kind", ["path", "bytes", "bytearray", "memoryview", "bytesio", "file_at_offset", "stream"]
)
async def test_every_source_kind_stores_exact_bytes(
    kind: str, tmp_path: Path, emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    data = PNG_HEAD + os.urandom(3 * 1024 * 1024 + 17)  # several chunks and a ragged tail
    source: UploadSource
    if kind == "path":
        (tmp_path / "face.png").write_bytes(data)
        source = tmp_path / "face.png"
    elif kind == "bytes":
        source = data
    elif kind == "bytearray":
        source = bytearray(data)
    elif kind == "memoryview":
        source = memoryview(data)
    elif kind == "bytesio":
        source = io.BytesIO(data)
    elif kind == "file_at_offset":
        (tmp_path / "mixed.bin").write_bytes(b"junk" * 10 + data)
        file = (tmp_path / "mixed.bin").open("rb")
        file.seek(40)  # the upload starts at the caller's position
        source = file
    else:
        source = StreamSource(_chunks(data, 1000), size=len(data), file_name="face.png")
    try:
        prepared = await prepare_upload(
            source, file_name="face.png" if kind == "file_at_offset" else None
        )
        assert prepared.size == len(data)
        assert prepared.media_type is MediaType.PNG
        assert prepared.replayable is (kind != "stream")
        if kind in ("bytes", "bytearray", "memoryview", "bytesio"):
            assert prepared.file_name == "upload.png"  # named by content
        key = await put(http, prepared, targets)
    finally:
        if kind == "file_at_offset":
            file.close()
    assert stored(emu, key)["sha256"] == hashlib.sha256(data).hexdigest()


async def test_content_type_sent_when_the_url_lists_its_signed_headers(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    prepared = await prepare_upload(PNG_HEAD + b"\0" * 100, file_name="a.png")
    await put(http, prepared, targets)
    # The emulator's signature ignores SignedHeaders, so the edited URLs are still accepted.
    targets.edit = lambda url: with_query(url, **{"X-Amz-SignedHeaders": "content-type;host"})
    await put(http, prepared, targets)
    # A URL that does not list its signed headers (SigV2 signs the type, empty when none).
    targets.edit = lambda url: without_query(url, "X-Amz-SignedHeaders")
    await put(http, prepared, targets)
    first, second, third = storage_requests(emu)
    assert first["headers"]["Content-Type"] == "image/png"
    assert second["headers"]["Content-Type"] == "image/png"  # signed: it must be sent
    assert "Content-Type" not in third["headers"]
    assert first["status"] == second["status"] == 200


# --- renewals and retries ---------------------------------------------------------------------


async def test_url_expired_at_storage_is_renewed(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    targets.queue.append(await targets.fresh())
    emu.advance_clock(1801)  # past X-Amz-Expires=1800 by the storage's clock, not by ours
    key = await put(http, await prepare_upload(MP4_HEAD * 1000, file_name="v.mp4"), targets)
    assert targets.calls == 2
    assert [r["status"] for r in storage_requests(emu)] == [403, 200]
    assert stored(emu, key)["status"] == "stored"


async def test_url_known_expired_is_renewed_before_sending(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    stale = await targets.fresh()
    targets.queue.append(
        UploadTarget(with_query(stale.upload_url, **{"X-Amz-Date": "20200101T000000Z"}), stale.key)
    )
    await put(http, await prepare_upload(MP4_HEAD * 1000, file_name="v.mp4"), targets)
    assert targets.calls == 2
    assert [r["status"] for r in storage_requests(emu)] == [200]  # the stale URL was never sent


async def test_renewal_gives_up_when_every_url_is_expired(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    async def expired_always() -> UploadTarget:
        targets.forget_token()  # the clock jumps past the token's life too
        target = await targets.fresh()
        emu.advance_clock(1801)  # expired at storage, though not by this machine's clock
        return target

    with pytest.raises(UrlExpiredError, match="expired"):
        await put(http, await prepare_upload(MP4_HEAD * 10, file_name="v.mp4"), expired_always)
    assert len(storage_requests(emu)) == 4  # the first URL and three renewals


@pytest.mark.parametrize("fault", [{"fault": "http", "http_status": 503}, {"fault": "cut"}])
async def test_transient_storage_failure_is_retried_from_the_start(
    fault: dict[str, Any], emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    data = JPEG_HEAD + os.urandom(2 * 1024 * 1024)
    emu.scenario("storage_put", **fault)
    calls: list[tuple[int, int | None]] = []
    key = await put(
        http,
        await prepare_upload(data, file_name="p.jpg"),
        targets,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert len(storage_requests(emu)) == 2
    assert stored(emu, key)["sha256"] == hashlib.sha256(data).hexdigest()
    assert calls[-1] == (len(data), len(data))


async def test_transient_failures_give_up_after_the_policy_attempts(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    emu.scenario("storage_put", fault="http", http_status=503, count=5)
    with pytest.raises(StorageError) as caught:
        await put(http, await prepare_upload(MP4_HEAD * 10, file_name="v.mp4"), targets)
    assert caught.value.http_status == 503
    assert len(storage_requests(emu)) == FAST_RETRY.attempts


async def test_retry_after_beyond_the_policy_cap_is_not_waited_for(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    emu.scenario("storage_put", fault="http", http_status=503, retry_after=3600)
    with pytest.raises(StorageError):
        await put(http, await prepare_upload(MP4_HEAD * 10, file_name="v.mp4"), targets)
    assert len(storage_requests(emu)) == 1


async def test_other_refusal_is_not_retried_and_carries_storage_code(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    targets.edit = lambda url: with_query(url, **{"X-Amz-Signature": "0" * 64})
    with pytest.raises(StorageError) as caught:
        await put(http, await prepare_upload(MP4_HEAD * 10, file_name="v.mp4"), targets)
    error = caught.value
    assert not isinstance(error, UrlExpiredError)
    assert error.storage_code == "SignatureDoesNotMatch"
    assert error.http_status == 403
    assert "signature we calculated does not match" in error.message
    assert "0" * 64 not in str(error)  # the URL is shown redacted
    assert len(storage_requests(emu)) == 1


async def test_stream_source_is_not_replayed_silently(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    data = MP4_HEAD + bytes(100_000)
    emu.scenario("storage_put", fault="http", http_status=503)
    upload = await prepare_upload(StreamSource(_chunks(data, 4096), len(data), "clip.mp4"))
    with pytest.raises(StorageError, match="read only once") as caught:
        await put(http, upload, targets)
    assert caught.value.http_status == 503
    assert len(storage_requests(emu)) == 1


async def test_stream_of_tiny_chunks_is_sniffed_and_sent_whole(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    data = JPEG_HEAD + os.urandom(20_000)
    upload = await prepare_upload(StreamSource(_chunks(data, 5), len(data), "p.jpg"))
    assert upload.media_type is MediaType.JPEG  # the head spans several chunks
    key = await put(http, upload, targets)
    assert stored(emu, key)["sha256"] == hashlib.sha256(data).hexdigest()


async def test_stream_shorter_than_declared_fails_clearly(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    data = MP4_HEAD + bytes(5000)
    upload = await prepare_upload(StreamSource(_chunks(data, 1000), len(data) + 10, "c.mp4"))
    with pytest.raises(InvalidInputError, match=f"ended after {len(data)} of its declared"):
        await put(http, upload, targets)
    assert all(u["status"] != "stored" for u in emu.ledger["uploads"])


@pytest.mark.parametrize("size", [1000, 48 * 1024 * 1024], ids=["reply_stalls", "body_stalls"])
async def test_stall_fails_with_timeout_not_a_total_deadline(
    size: int, tmp_path: Path, emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    # A small body fits in socket buffers (the reply stalls: sock_read); a large one cannot
    # leave the client (the body stalls: the watchdog).
    emu.scenario("storage_put", fault="slow", delay=5)
    upload = await prepare_upload(sparse_mp4(tmp_path / "v.mp4", size))
    config = Config(stall_timeout=0.5, retry=RetryPolicy(attempts=1))
    started = time.perf_counter()
    with pytest.raises(MioCreateTimeoutError, match=r"stall|stopped answering"):
        await put(http, upload, targets, config)
    assert time.perf_counter() - started < 4


async def test_session_wide_authorization_is_refused(emu: Emulator, targets: Targets) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer secret"}) as leaky:
        with pytest.raises(MioCreateError, match="Authorization"):
            await put(leaky, await prepare_upload(MP4_HEAD, file_name="v.mp4"), targets)
    assert storage_requests(emu) == []


async def test_limiter_bounds_simultaneous_uploads(
    emu: Emulator, http: aiohttp.ClientSession, targets: Targets
) -> None:
    limiter = anyio.CapacityLimiter(2)
    peak = 0
    data = JPEG_HEAD + bytes(2 * 1024 * 1024)

    async def one() -> None:
        nonlocal peak
        upload = await prepare_upload(data, file_name="p.jpg")
        peak = max(peak, limiter.borrowed_tokens)
        await put_object(
            http,
            upload,
            get_target=targets,
            config=Config(),
            limiter=limiter,
            progress=lambda *_: sample(),
        )

    def sample() -> None:
        nonlocal peak
        peak = max(peak, limiter.borrowed_tokens)

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(one)
    assert peak <= 2
    assert len([u for u in emu.ledger["uploads"] if u["status"] == "stored"]) == 6


# --- local checks: a typed error, and not one request -----------------------------------------


def _bad_inputs(tmp: Path) -> Iterator[tuple[str, Any, dict[str, Any], type[Exception]]]:
    (tmp / "empty.jpg").write_bytes(b"")
    (tmp / "big.mp4").write_bytes(MP4_HEAD + bytes(2000))
    (tmp / "photo.txt").write_bytes(JPEG_HEAD + bytes(100))
    (tmp / "notes.jpg").write_text("not an image, just text\n" * 10)
    (tmp / "photo.mp4").write_bytes(JPEG_HEAD + bytes(100))
    (tmp / "folder.jpg").mkdir()
    yield "missing", tmp / "missing.jpg", {}, SourceNotFoundError
    yield "directory", tmp / "folder.jpg", {}, SourceNotFoundError
    yield "empty", tmp / "empty.jpg", {}, EmptySourceError
    yield "too large", tmp / "big.mp4", {"max_bytes": 1000}, FileTooLargeError
    yield "wrong extension", tmp / "photo.txt", {}, UnsupportedFormatError
    yield "text named .jpg", tmp / "notes.jpg", {}, UnsupportedFormatError
    yield "image named .mp4", tmp / "photo.mp4", {}, UnsupportedFormatError
    yield "empty bytes", b"", {}, EmptySourceError
    yield "bytes without a known type", b"hello world, not media", {}, UnsupportedFormatError
    yield "empty stream", StreamSource(_chunks(b"", 1), 0, "v.mp4"), {}, EmptySourceError
    yield "text file object", io.StringIO("x"), {}, InvalidInputError
    yield "not a source", 42, {}, InvalidInputError


async def test_bad_inputs_get_typed_errors_and_send_nothing(tmp_path: Path, emu: Emulator) -> None:
    async with emu.client() as client:
        for name, source, options, expected in _bad_inputs(tmp_path):
            # The client uses the service's limit; a small one is given to the function.
            call = prepare_upload(source, **options) if options else client.upload(source)
            with pytest.raises(expected) as caught:
                await call
            assert isinstance(caught.value, MioCreateError), name
            assert caught.value.message, name
    assert emu.ledger["requests"] == []


async def test_error_messages_say_what_was_wrong(tmp_path: Path) -> None:
    inputs = {name: (source, options) for name, source, options, _ in _bad_inputs(tmp_path)}
    messages = {}
    for name in (
        "missing",
        "empty",
        "too large",
        "wrong extension",
        "text named .jpg",
        "image named .mp4",
    ):
        source, options = inputs[name]
        with pytest.raises(MioCreateError) as caught:
            await prepare_upload(source, **options)
        messages[name] = str(caught.value)
    assert "no such file" in messages["missing"]
    assert "empty" in messages["empty"]
    assert "over the limit" in messages["too large"]
    assert "'photo.txt'" in messages["wrong extension"]
    assert "first bytes" in messages["text named .jpg"]
    assert "JPEG" in messages["image named .mp4"]


async def test_file_object_position_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    path.write_bytes(PNG_HEAD + bytes(50))
    with path.open("rb") as file:
        prepared = await prepare_upload(file)
        assert file.tell() == 0  # the sniff read was undone
        assert prepared.file_name == "p.png"  # the file's own name


# --- progress ---------------------------------------------------------------------------------


async def test_progress_rate_is_bounded_and_the_final_call_always_made() -> None:
    calls: list[tuple[int, int | None]] = []
    meter = ProgressMeter(lambda done, total: calls.append((done, total)), 10_000)
    for _ in range(10_000):
        await meter.advance(1)
    await meter.finish()
    assert 2 <= len(calls) <= 5  # the first call, perhaps a few more, and the final one
    assert calls[-1] == (10_000, 10_000)


async def test_async_progress_callback_is_awaited() -> None:
    seen: list[int] = []

    async def callback(done: int, total: int | None) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(done)

    meter = ProgressMeter(callback, 3)
    await meter.finish(3)
    assert seen == [3]


# --- a StreamSource says what is wrong with it, typed -------------------------------------------


@pytest.mark.parametrize("size", ["10", 1.5, None, True])
def test_stream_source_refuses_non_int_size(size: object) -> None:
    with pytest.raises(InvalidInputError):
        StreamSource(_chunks(b"x", 1), size, "a.jpg")  # type: ignore[arg-type]


# --- against a fake service: a storage message echoing the signature is scrubbed -----------------


async def test_storage_message_echoing_the_signature_is_scrubbed(fake: FakeService) -> None:
    serve_upload_url(fake)

    async def put(request: web.Request) -> web.Response:
        await request.read()
        body = (
            "<Error><Code>SignatureDoesNotMatch</Code><Message>expected "
            f"0123456789abcdef0123456789abcdef for {request.path_qs}</Message></Error>"
        )
        return web.Response(status=403, body=body.encode())

    fake.route("PUT", "/storage/o.jpg", put)
    async with fake.client() as mc:
        with pytest.raises(StorageError) as caught:
            await mc.upload(JPEG, file_name="a.jpg")
    assert "0123456789abcdef0123456789abcdef" not in str(caught.value)
    assert caught.value.storage_code == "SignatureDoesNotMatch"


# --- bad input is a typed InvalidInputError ------------------------------------------------------


@pytest.mark.parametrize("path", ["a\0b.jpg", "/tmp/x\0.jpg", "dir/a\0.jpg"])
async def test_nul_in_paths(fake: FakeService, path: str) -> None:
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.upload(path)
        with pytest.raises(InvalidInputError):
            await mc.swap_image(path, Key("u/b.jpg"))
    assert sum(fake.hits.values()) == 0


async def _text_chunks() -> AsyncIterator[Any]:
    yield "\xff\xd8\xffnot bytes"


async def _int_chunks() -> AsyncIterator[Any]:
    yield 12345


@pytest.mark.parametrize("chunks", [_text_chunks, _int_chunks])
async def test_stream_source_with_bad_chunks(fake: FakeService, chunks: Any) -> None:
    serve_upload_url(fake)
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.upload(StreamSource(chunks(), 100, "a.jpg"))


async def test_stream_source_raising_is_typed(fake: FakeService) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield JPEG[:100]
        raise RuntimeError("the producer broke")

    serve_upload_url(fake)

    async def put(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    fake.route("PUT", "/storage/o.jpg", put)
    async with fake.client() as mc:
        with pytest.raises(MioCreateError) as caught:
            await mc.upload(StreamSource(broken(), 5000, "a.jpg"))
    assert isinstance(caught.value.__cause__, RuntimeError)


# --- a non-http(s) upload URL is a protocol error ------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x.jpg", "file:///etc/passwd", "/relative/x"])
async def test_upload_url_not_http(fake: FakeService, url: str) -> None:
    serve_upload_url(fake, url=url)
    async with fake.client() as mc:
        with pytest.raises(ProtocolError):
            await mc.upload(JPEG, file_name="a.jpg")
    assert fake.hits[fake.path(Operation.UPLOAD_URL)] == 1


# --- a stream that never yields is bounded -------------------------------------------------------


async def _silent() -> AsyncIterator[bytes]:
    await anyio.sleep_forever()
    yield b""


async def _head_then_silent() -> AsyncIterator[bytes]:
    yield JPEG[:64]
    await anyio.sleep_forever()


@pytest.mark.parametrize("chunks", [_silent, _head_then_silent])
async def test_silent_stream_is_bounded_by_the_stall_timeout(
    fake: FakeService, chunks: Any
) -> None:
    serve_upload_url(fake)

    async def put(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    fake.route("PUT", "/storage/o.jpg", put)
    async with fake.client(stall_timeout=0.3) as mc:
        with anyio.fail_after(10), pytest.raises(MioCreateTimeoutError):
            await mc.upload(StreamSource(chunks(), 5000, "a.jpg"))


# --- a file changed during its upload fails ------------------------------------------------------


async def test_file_rewritten_in_place_during_upload_fails(
    fake: FakeService, tmp_path: Path
) -> None:
    path = write_sample_video(tmp_path / "v.mp4", duration=1.0, size=32 << 20)
    size = path.stat().st_size
    serve_upload_url(fake)
    received: list[int] = []
    rewritten = anyio.Event()

    async def slow_put(request: web.Request) -> web.Response:
        total = 0
        while True:
            chunk = await request.content.read(256 << 10)
            if not chunk:
                break
            total += len(chunk)
            if total >= (1 << 20) and not rewritten.is_set():
                with open(path, "r+b") as handle:  # same size, other bytes
                    handle.seek(size // 2)
                    handle.write(b"\x07" * 4096)
                os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))
                rewritten.set()
            await anyio.sleep(0.005)
        received.append(total)
        return web.Response()

    fake.route("PUT", "/storage/o.jpg", slow_put)
    async with fake.client() as mc:
        with anyio.fail_after(60), pytest.raises(InvalidInputError):
            await mc.upload(path)
    assert rewritten.is_set()
    assert size not in received  # storage never got a whole (mixed) body


async def test_file_replaced_between_checks_and_put_is_not_sent_unchecked(
    fake: FakeService, tmp_path: Path
) -> None:
    path = write_sample_photo(tmp_path / "p.jpg")
    replacement = tmp_path / "other"
    text = b"plain text, not an image " * (path.stat().st_size // 25 + 1)
    replacement.write_bytes(text[: path.stat().st_size])  # the same size: only the bytes differ
    bodies: list[bytes] = []

    async def upload_url(request: web.Request) -> web.Response:
        await request.read()
        os.replace(replacement, path)  # between the local checks and the PUT
        return envelope({"upload_url": storage_url(fake), "key": "u/o.jpg"})

    async def put(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response()

    fake.api(Operation.UPLOAD_URL, upload_url)
    fake.route("PUT", "/storage/o.jpg", put)
    async with fake.client() as mc:
        with contextlib.suppress(InvalidInputError):
            await mc.upload(path)
    assert all(not body.startswith(b"plain text") for body in bodies)


# --- an M4A named .mp4 is refused before any request ---------------------------------------------


async def test_m4a_named_mp4_is_refused(fake: FakeService) -> None:
    m4a = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A isommp42" + b"\x00" * 500
    async with fake.client() as mc:
        with pytest.raises(UnsupportedFormatError):
            await mc.upload(m4a, file_name="song.mp4")
    assert sum(fake.hits.values()) == 0
