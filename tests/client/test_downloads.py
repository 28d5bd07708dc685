"""Downloads: atomic (complete under the final name, or absent), overwrite rules, expiry."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from fake_service import (
    JPEG,
    FakeService,
    RawServer,
    image_result,
    serve_detail,
    signed_query,
    storage_url,
)
from PIL import Image

from miocreate_async import ImageSwapResult, MioCreate, ProtocolError
from miocreate_async._config import Config
from miocreate_async._errors import (
    ConfigurationError,
    InvalidInputError,
    MioCreateError,
    MioCreateTimeoutError,
    StorageError,
    TransportError,
    UrlExpiredError,
)
from miocreate_async._models import ProgressCallback
from miocreate_async._retry import RetryPolicy
from miocreate_async._transfer._get import download
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(3 * 1024 * 1024 + 5)
FAST = Config(retry=RetryPolicy(attempts=2, initial=0.01, jitter=False), stall_timeout=0.5)


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The shared emulator of conftest.py, under this module's short name."""
    return emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[MioCreate]:
    async with emu.client() as client:
        yield client


@pytest.fixture
async def url(client: MioCreate) -> str:
    """A signed storage URL of a stored PNG, as results are."""
    return await client.get_access_url(await client.upload(PNG, file_name="result.png"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


async def fetch(
    url: str,
    destination: Path | str,
    *,
    config: Config = FAST,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    async with aiohttp.ClientSession() as http:
        return await download(
            http,
            url,
            destination,
            default_name="result.png",
            overwrite=overwrite,
            config=config,
            limiter=anyio.CapacityLimiter(2),
            progress=progress,
        )


async def test_download_into_a_folder_under_the_default_name(url: str, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    path = await fetch(url, tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert path == tmp_path / "result.png"
    assert path.read_bytes() == PNG
    assert calls[-1] == (len(PNG), len(PNG))
    assert leftovers(tmp_path) == []


async def test_destination_ending_with_a_separator_is_a_new_folder(
    url: str, tmp_path: Path
) -> None:
    path = await fetch(url, f"{tmp_path}/new/")
    assert path == tmp_path / "new" / "result.png"
    assert path.read_bytes() == PNG
    # Only the last missing folder is created: a typo never makes a tree.
    with pytest.raises(InvalidInputError, match="does not exist"):
        await fetch(url, f"{tmp_path}/no/such/")
    assert not (tmp_path / "no").exists()


async def test_client_download_to_a_file_path(client: MioCreate, url: str, tmp_path: Path) -> None:
    path = await client.download(url, tmp_path / "mine.png")
    assert path == tmp_path / "mine.png"
    assert path.read_bytes() == PNG


async def test_overwrite_refused_unless_asked(emu: Emulator, url: str, tmp_path: Path) -> None:
    target = tmp_path / "result.png"
    target.write_bytes(b"precious")
    before = len(emu.ledger["requests"])
    with pytest.raises(InvalidInputError, match=r"already exists.*overwrite=True"):
        await fetch(url, tmp_path)
    assert target.read_bytes() == b"precious"
    assert len(emu.ledger["requests"]) == before  # refused before any request
    assert await fetch(url, tmp_path, overwrite=True) == target
    assert target.read_bytes() == PNG


async def test_expired_result_url(emu: Emulator, url: str, tmp_path: Path) -> None:
    emu.advance_clock(3601)  # past the access URL's X-Amz-Expires
    folder = tmp_path / "downloads"
    folder.mkdir()
    with pytest.raises(UrlExpiredError, match="expired") as caught:
        await fetch(url, folder)
    assert caught.value.http_status == 403
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    assert signature not in str(caught.value)
    assert "X-Amz-Signature=[redacted]" in str(caught.value)
    assert list(folder.iterdir()) == []


async def test_missing_object_is_a_storage_error_not_retried(
    emu: Emulator, url: str, tmp_path: Path
) -> None:
    emu.reset()  # objects gone; the URL's signature still checks
    with pytest.raises(StorageError) as caught:
        await fetch(url, tmp_path)
    assert caught.value.storage_code == "NoSuchKey"
    assert caught.value.http_status == 404
    assert len([r for r in emu.ledger["requests"] if r["operation"] == "storage_get"]) == 1


async def test_transient_failure_is_retried(emu: Emulator, url: str, tmp_path: Path) -> None:
    emu.scenario("storage_get", fault="http", http_status=503)
    assert (await fetch(url, tmp_path)).read_bytes() == PNG
    gets = [r for r in emu.ledger["requests"] if r["operation"] == "storage_get"]
    assert [r["status"] for r in gets][-2:] == [503, 200]


# --- interruptions: a server that misbehaves mid-body -----------------------------------------


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """``/cut`` promises 4 MB, sends 1 MB and drops the connection; ``/hang`` sends 1 MB and
    then nothing."""
    seen = {"cut": 0, "hang": 0}

    async def partial(request: web.Request) -> web.StreamResponse:
        name = request.path.strip("/")
        seen[name] += 1
        response = web.StreamResponse(headers={"Content-Length": str(4 << 20)})
        await response.prepare(request)
        await response.write(b"\x89PNG" + bytes((1 << 20) - 4))
        if name == "cut":
            assert request.transport is not None
            request.transport.close()
        else:
            await anyio.sleep(30)
        return response

    app = web.Application()
    app.router.add_get("/cut", partial)
    app.router.add_get("/hang", partial)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


@pytest.mark.e2e
async def test_cut_connection_leaves_no_file(
    flaky: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    base, seen = flaky
    with pytest.raises(TransportError):
        await fetch(f"{base}/cut", tmp_path / "out.png")
    assert seen["cut"] == FAST.retry.attempts  # retried from the start, then given up
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a temporary file


@pytest.mark.e2e
async def test_stalled_download_times_out_and_leaves_no_file(
    flaky: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    base, _ = flaky
    config = Config(retry=RetryPolicy(attempts=1), stall_timeout=0.3)
    with pytest.raises(MioCreateTimeoutError):
        await fetch(f"{base}/hang", tmp_path / "out.png", config=config)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
async def test_cancelled_download_leaves_no_file(
    flaky: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    base, seen = flaky
    with anyio.move_on_after(0.5) as scope:
        await fetch(f"{base}/hang", tmp_path / "out.png", config=Config())
    assert scope.cancelled_caught
    assert seen["hang"] == 1
    assert list(tmp_path.iterdir()) == []


# --- a swap's result: a destination without a file name is a folder, the real extension wins, and
# the result as bytes or as a stream of chunks ------------------------------------------------


@pytest.fixture
async def result(client: MioCreate, sample_photo: Path, sample_face: Path) -> ImageSwapResult:
    return await client.swap_image(sample_photo, sample_face)


def storage_gets(emulator: Emulator) -> int:
    return sum(r["operation"] == "storage_get" for r in emulator.ledger["requests"])


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: tmp / "out/",  # a Path built from "out/" (the slash is gone)
        lambda tmp: str(tmp / "out") + os.sep,
        lambda tmp: tmp / "out",
    ],
    ids=["path-from-slash", "string-with-slash", "no-extension"],
)
async def test_a_destination_without_a_file_name_is_a_folder(
    result: ImageSwapResult, tmp_path: Path, make: object
) -> None:
    destination = make(tmp_path)  # type: ignore[operator]
    saved = await result.download(destination)
    assert saved.parent == tmp_path / "out"
    assert (tmp_path / "out").is_dir()
    assert saved.name == Path(result.merge_key).name


async def test_a_wrong_extension_is_replaced_by_the_real_one(
    result: ImageSwapResult, tmp_path: Path
) -> None:
    assert Path(result.merge_key).suffix == ".jpg"
    saved = await result.download(tmp_path / "x.png")
    assert saved == tmp_path / "x.jpg"
    assert not (tmp_path / "x.png").exists()
    with Image.open(saved) as image:
        assert image.format == "JPEG"
    # .jpeg is the same format: kept as given.
    assert (await result.download(tmp_path / "y.jpeg")).name == "y.jpeg"


async def test_only_the_last_missing_folder_is_created(
    result: ImageSwapResult, emulator: Emulator, tmp_path: Path
) -> None:
    saved = await result.download(tmp_path / "new" / "x.jpg")
    assert saved == tmp_path / "new" / "x.jpg"
    before = storage_gets(emulator)
    with pytest.raises(InvalidInputError, match="does not exist"):
        await result.download(tmp_path / "no" / "such" / "x.jpg")
    assert not (tmp_path / "no").exists()
    assert storage_gets(emulator) == before  # refused before any byte moved


async def test_read_and_iter_bytes_give_the_result_without_a_file(
    result: ImageSwapResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    data = await result.read()
    assert len(data) == result.size
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (result.width, result.height)
    chunks = [chunk async for chunk in result.iter_bytes(chunk_size=1024)]
    assert len(chunks) > 1
    assert all(len(chunk) <= 1024 for chunk in chunks)
    assert b"".join(chunks) == data
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


async def test_read_of_an_expired_result_is_a_typed_error(
    result: ImageSwapResult, emulator: Emulator
) -> None:
    emulator.advance_clock(8 * 24 * 3600)
    with pytest.raises(UrlExpiredError):
        await result.read()
    with pytest.raises(UrlExpiredError):
        async for _ in result.iter_bytes():
            pass


# --- against a fake service: a session-wide Authorization never reaches storage ------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # aiohttp 3.13 deprecates auth=
@pytest.mark.parametrize("how", ["header", "auth"])
async def test_download_refuses_session_wide_authorization(
    fake: FakeService, tmp_path: Path, how: str
) -> None:
    async def get(request: web.Request) -> web.Response:
        return web.Response(body=JPEG)

    fake.route("GET", "/storage/r.jpg", get)
    kwargs: dict[str, Any] = (
        {"headers": {"Authorization": "Bearer leaked"}}
        if how == "header"
        else {"auth": aiohttp.BasicAuth("user", "pass")}
    )
    async with aiohttp.ClientSession(**kwargs) as session:
        from miocreate_async import MioCreate

        async with MioCreate(token="t", base_url=fake.url, session=session) as mc:
            with pytest.raises(ConfigurationError):
                await mc.download(storage_url(fake, "r.jpg"), tmp_path / "r.jpg")
    assert fake.hits["/storage/r.jpg"] == 0


# --- bad destinations and names are refused before any byte moves --------------------------------


async def test_download_destination_under_a_file(fake: FakeService, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.download(storage_url(fake, "r.jpg"), tmp_path / "file.txt" / "out.jpg")
        with pytest.raises(InvalidInputError):
            await mc.download(storage_url(fake, "r.jpg"), str(tmp_path / "file.txt" / "sub") + "/")
    assert fake.hits["/storage/r.jpg"] == 0


@pytest.mark.parametrize("name", ["out\0.jpg", "a" * 300 + ".jpg"])
async def test_download_bad_names(fake: FakeService, tmp_path: Path, name: str) -> None:
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.download(storage_url(fake, "r.jpg"), tmp_path / name)
    assert fake.hits["/storage/r.jpg"] == 0


async def test_download_name_that_fits_but_its_temporary_file_would_not(
    fake: FakeService, tmp_path: Path
) -> None:
    async def get(request: web.Request) -> web.Response:
        return web.Response(body=JPEG)

    fake.route("GET", "/storage/r.jpg", get)
    name = "b" * 250 + ".jpg"
    async with fake.client() as mc:
        path = await mc.download(storage_url(fake, "r.jpg"), tmp_path / name)
    assert path.read_bytes() == JPEG
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("key", ["results/a\0b.jpg", "results/" + "c" * 400 + ".jpg"])
async def test_result_names_from_the_server(fake: FakeService, tmp_path: Path, key: str) -> None:
    async def get(request: web.Request) -> web.Response:
        return web.Response(body=JPEG)

    fake.route("GET", "/storage/r.jpg", get)
    result = image_result(storage_url(fake, "r.jpg"), size=len(JPEG), key=key)
    serve_detail(fake, {"id": 5, "status": 0, "additional_data": result})
    async with fake.client() as mc:
        info = await mc.get_task(5)
        assert isinstance(info.result, ImageSwapResult)
        try:
            path = await info.result.download(tmp_path)
        except InvalidInputError:
            return
    assert path.parent == tmp_path
    assert path.read_bytes() == JPEG


# --- a non-http(s) result URL is a protocol error ------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x.jpg", "file:///etc/passwd", "javascript:x"])
async def test_result_url_not_http(fake: FakeService, tmp_path: Path, url: str) -> None:
    serve_detail(fake, {"id": 5, "status": 0, "additional_data": image_result(url)})
    async with fake.client() as mc:
        info = await mc.get_task(5)
        assert isinstance(info.result, ImageSwapResult)
        with pytest.raises(ProtocolError):
            await info.result.download(tmp_path)
        with pytest.raises(ProtocolError):
            await mc.download(url, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- a short download without Content-Length is not saved ----------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n" + JPEG[:500],
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ],
)
async def test_short_download_is_not_saved(tmp_path: Path, fake: FakeService, reply: bytes) -> None:
    async with RawServer(reply) as storage:
        url = f"{storage.url}/r.jpg?{signed_query()}"
        serve_detail(
            fake, {"id": 5, "status": 0, "additional_data": image_result(url, size=len(JPEG))}
        )
        async with fake.client() as mc:
            info = await mc.get_task(5)
            assert isinstance(info.result, ImageSwapResult)
            with pytest.raises(MioCreateError):
                await info.result.download(tmp_path / "out.jpg")
    assert list(tmp_path.iterdir()) == []


# --- a GCS-signed URL's signature never shows ----------------------------------------------------


async def test_gcs_signature_not_in_errors(fake: FakeService, tmp_path: Path) -> None:
    async def denied(request: web.Request) -> web.Response:
        return web.Response(status=403, body=b"<Error><Code>AccessDenied</Code></Error>")

    fake.route("GET", "/storage/g.jpg", denied)
    url = (
        f"{fake.url}/storage/g.jpg?X-Goog-Algorithm=GOOG4-RSA-SHA256"
        "&X-Goog-Credential=svc%40p.iam%2F20260101&X-Goog-Signature=goog5ecret77"
    )
    async with fake.client() as mc:
        with pytest.raises(StorageError) as caught:
            await mc.download(url, tmp_path / "g.jpg")
    assert "goog5ecret77" not in str(caught.value)
    assert "svc%40p.iam" not in str(caught.value)
