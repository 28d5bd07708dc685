"""Issue 14, library side: folders as destinations (item 2), one exception per meaning and the
operation the user called (5), results as bytes or a stream (6), logging a user can switch on
(8), a client used from a second event loop (10)."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from miocreate_async import (
    ImageSwapResult,
    InvalidInputError,
    KeyNotFoundError,
    MioCreate,
    NoFaceDetectedError,
    SwapJob,
    TaskFailedError,
    TaskTimeoutError,
    UrlExpiredError,
)
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio


@pytest.fixture
async def result(client: MioCreate, sample_photo: Path, sample_face: Path) -> ImageSwapResult:
    return await client.swap_image(sample_photo, sample_face)


def storage_gets(emulator: Emulator) -> int:
    return sum(r["operation"] == "storage_get" for r in emulator.ledger["requests"])


# --- item 2: a destination with a trailing separator, or without an extension, is a folder ----


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


# --- item 5: the class of the code, which is also a TaskFailedError; the operation called ----


async def test_a_task_failing_with_602_raises_no_face_detected(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    emulator.scenario("image_swap", task_fail={"code": 602, "message": "No face detected"})
    with pytest.raises(NoFaceDetectedError) as caught:
        await client.swap_image(sample_photo, sample_face)
    error = caught.value
    assert isinstance(error, TaskFailedError)
    assert type(error).__name__ == "NoFaceDetectedError"
    assert error.code == 602
    assert error.task_id is not None
    assert error.operation == "swap_image"
    assert "operation=swap_image" in str(error)
    assert "task_detail" not in str(error)


async def test_wait_names_itself_and_undocumented_codes_stay_task_failed(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    image, face = await client.upload(sample_photo), await client.upload(sample_face)
    emulator.scenario("image_swap", task_fail={"code": 3, "message": "Task failed"})
    task = await client.create_image_swap(image, face)
    with pytest.raises(TaskFailedError) as caught:
        await client.wait(task)
    assert type(caught.value) is TaskFailedError
    assert caught.value.operation == "wait"

    emulator.scenario("image_swap", task_fail={"code": 702, "message": "key gone"})
    task = await client.create_image_swap(image, face)
    with pytest.raises(KeyNotFoundError) as gone:
        await client.wait(task, timeout=30)
    assert isinstance(gone.value, TaskFailedError)


async def test_timeouts_name_the_operation_called(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    with pytest.raises(TaskTimeoutError) as caught:
        await client.swap_image(sample_photo, sample_face, timeout=0.001)
    assert caught.value.operation == "swap_image"


async def test_batch_outcomes_carry_the_class_of_the_code(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    emulator.scenario("image_swap", task_fail={"code": 602, "message": "No face detected"})
    async with client.swap_many([SwapJob(image=sample_photo, face=sample_face)]) as results:
        (outcome,) = [outcome async for outcome in results]
    assert isinstance(outcome.error, NoFaceDetectedError)
    assert isinstance(outcome.error, TaskFailedError)
    assert outcome.error.task_id == outcome.task_id


def test_the_combined_classes_pickle() -> None:
    import pickle

    from miocreate_async._errors import task_failed_error

    error = task_failed_error(602, "No face detected", operation="swap_image", task_id=7)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert isinstance(copy, NoFaceDetectedError)
    assert copy.task_id == 7


# --- item 6: results as bytes or as a stream of chunks ----------------------------------------


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


# --- item 8: MIOCREATE_LOG --------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from miocreate_async import MioCreate

    async def main() -> None:
        async with MioCreate() as mc:
            result = await mc.swap_image(sys.argv[1], face=sys.argv[2])
            await result.read()

    asyncio.run(main())
    """
)


def run_script(served: Emulator, level: str, *args: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MIOCREATE_BASE_URL": served.url,
        "MIOCREATE_CLIENT_ID": served.client_id,
        "MIOCREATE_CLIENT_SECRET": served.client_secret,
        "MIOCREATE_LOG": level,
    }
    env.pop("MIOCREATE_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_miocreate_log_shows_requests_and_retries_redacted(
    miocreate_emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    miocreate_emulator.scenario("task_detail", code=500, count=1)
    done = run_script(miocreate_emulator, "debug", sample_photo, sample_face)
    assert done.returncode == 0, done.stderr
    log = done.stderr
    assert "POST" in log
    assert "/v1/source/upload-url" in log
    assert "PUT" in log  # the upload to storage
    assert "retry" in log.lower()
    assert "500" in log  # the reason of the retry
    assert miocreate_emulator.client_secret not in log
    assert "X-Amz-Signature=[redacted]" in log or "X-Amz-Signature" not in log
    assert "Bearer" not in log

    quiet = run_script(miocreate_emulator, "info", sample_photo, sample_face)
    assert quiet.returncode == 0, quiet.stderr
    assert "/v1/source/upload-url" not in quiet.stderr  # requests are debug
    assert "swap_image" in quiet.stderr  # one line per call the user made


# --- item 10: one client per event loop -------------------------------------------------------


# The first loop's connections die with it, unclosed: that is the user's leak, collected here.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_client_used_from_a_second_event_loop_says_so(
    miocreate_emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    clients = [miocreate_emulator.client()]  # as a script's module-level client would be

    async def swap() -> None:
        await clients[0].swap_image(sample_photo, sample_face)

    try:
        asyncio.run(swap())
        with pytest.raises(RuntimeError, match="event loop") as caught:
            asyncio.run(swap())
        assert "one MioCreate per event loop" in str(caught.value)
        assert type(caught.value) is RuntimeError  # not a group of "Event loop is closed"
    finally:
        asyncio.run(clients[0].aclose())  # closing from anywhere is allowed
        clients.clear()
        gc.collect()
