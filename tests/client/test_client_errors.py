"""Typed errors for every documented code, for transport failures and for failed tasks."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import anyio
import pytest
from fake_service import (
    FakeService,
    image_result,
    json_bytes,
    serve_detail,
    signed_query,
    storage_url,
)

from miocreate_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConnectError,
    ContentPolicyError,
    FileError,
    FileTooLargeError,
    HTTPStatusError,
    ImageSwapResult,
    InsufficientCreditsError,
    InvalidInputError,
    Key,
    KeyNotFoundError,
    MioCreate,
    MioCreateError,
    MultipleFacesError,
    NoFaceDetectedError,
    Operation,
    ProtocolError,
    RequestQuotaError,
    RetryPolicy,
    ServerError,
    SubmissionUncertainError,
    SwapJob,
    TargetPolicyError,
    TaskExceptionError,
    TaskFailedError,
    TaskTimeoutError,
    UnsupportedFormatError,
)
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio

NO_RETRY = RetryPolicy(attempts=1)

CODES = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (500, ServerError),
    (601, TaskExceptionError),
    (602, NoFaceDetectedError),
    (603, MultipleFacesError),
    (604, ContentPolicyError),
    (605, TargetPolicyError),
    (701, FileError),
    (702, KeyNotFoundError),
    (703, UnsupportedFormatError),
    (704, FileTooLargeError),
    (801, InsufficientCreditsError),
    (802, RequestQuotaError),
]


@pytest.mark.parametrize(("code", "error_class"), CODES)
async def test_every_documented_code_is_a_typed_error(
    emulator: Emulator, code: int, error_class: type[APIError]
) -> None:
    async with emulator.client(retry=NO_RETRY) as client:
        await client.get_upload_url("warm-up.jpg")  # token fetched before the scenario
        emulator.scenario(operation="image_swap", code=code, count=5)
        with pytest.raises(error_class) as caught:
            await client.create_image_swap("a/b.jpg", "a/c.jpg")
    error = caught.value
    assert isinstance(error, APIError)
    assert error.code == code
    assert error.operation == "create_image_swap"  # the method called
    assert error.message
    assert f"code={code}" in str(error)


async def test_validation_codes_come_from_the_service(
    client: MioCreate, emulator: Emulator, sample_face: Path
) -> None:
    face_key = await client.upload(sample_face)
    with pytest.raises(KeyNotFoundError):
        await client.create_image_swap("temporary/missing.jpg", face_key)
    # Unknown keys are refused before any credit is spent.
    assert emulator.ledger["credits_spent"] == 0


async def test_failed_task_carries_its_id_and_message(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    emulator.scenario(operation="image_swap", task_fail={"code": 602, "message": "No face"})
    with pytest.raises(TaskFailedError) as caught:
        await client.swap_image(sample_photo, face=sample_face)
    [task] = emulator.ledger["tasks"]
    assert caught.value.task_id == task["id"]
    assert caught.value.code == 602
    assert "No face" in str(caught.value)


@pytest.mark.e2e
async def test_wait_has_a_deadline(sample_photo: Path, sample_face: Path) -> None:
    async with Emulator(latency=30, seed=3) as slow, slow.client() as client:
        task = await client.create_image_swap(
            await client.upload(sample_photo), await client.upload(sample_face)
        )
        with pytest.raises(TaskTimeoutError) as caught:
            await client.wait(task, timeout=0.5)
        assert caught.value.task_id == task.id
        assert isinstance(caught.value, TimeoutError)


async def test_html_502_is_a_typed_error_and_retried(emulator: Emulator) -> None:
    async with emulator.client(retry=RetryPolicy(attempts=3, initial=0.01)) as client:
        await client.get_upload_url("warm-up.jpg")
        emulator.scenario(operation="upload_url", fault="html502", count=2)
        target = await client.get_upload_url("me.jpg")
        assert target.key
        emulator.scenario(operation="upload_url", fault="html502", count=3)
        with pytest.raises(HTTPStatusError) as caught:
            await client.get_upload_url("me.jpg")
        assert caught.value.http_status == 502


async def test_reads_are_retried_on_500_and_802(emulator: Emulator) -> None:
    async with emulator.client(retry=RetryPolicy(attempts=4, initial=0.01)) as client:
        await client.get_upload_url("warm-up.jpg")
        emulator.scenario(operation="access_url", code=500)
        emulator.scenario(operation="access_url", code=802)
        key = (await client.get_upload_url("x.jpg")).key
        with pytest.raises(MioCreateError):  # the key was never uploaded: 702 after the retries
            await client.get_access_url(key)
        statuses = [
            r["code"] for r in emulator.ledger["requests"] if r["operation"] == "access_url"
        ]
        assert statuses[:2] == [500, 802]
        assert len(statuses) == 3


async def test_cut_task_creation_is_uncertain_and_never_resent(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    image_key, face_key = await client.upload(sample_photo), await client.upload(sample_face)
    emulator.scenario(operation="image_swap", fault="cut_after")
    with pytest.raises(SubmissionUncertainError) as caught:
        await client.create_image_swap(image_key, face_key)
    assert caught.value.operation == "create_image_swap"
    # The server made the task before the cut; the client did not send it again.
    assert len(emulator.ledger["tasks"]) == 1
    creates = [r for r in emulator.ledger["requests"] if r["operation"] == "image_swap"]
    assert len(creates) == 1


async def test_task_creation_refused_with_802_is_resent(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    image_key, face_key = await client.upload(sample_photo), await client.upload(sample_face)
    emulator.scenario(operation="image_swap", code=802)
    task = await client.create_image_swap(image_key, face_key)
    assert [t["id"] for t in emulator.ledger["tasks"]] == [task.id]


@pytest.mark.e2e
async def test_connection_refused_is_a_connect_error() -> None:
    async with MioCreate(
        token="t", base_url="http://127.0.0.1:9", retry=RetryPolicy(attempts=2, initial=0.01)
    ) as client:
        with pytest.raises(ConnectError):
            await client.create_image_swap("a/b.jpg", "a/c.jpg")


async def test_closed_client_refuses_calls(emulator: Emulator) -> None:
    client = emulator.client()
    async with client:
        await client.get_upload_url("a.jpg")
    await client.aclose()  # harmless twice
    with pytest.raises(ClientClosedError):
        await client.get_upload_url("a.jpg")
    with pytest.raises(ClientClosedError):
        async with client:
            pass


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MIOCREATE_TOKEN", "MIOCREATE_CLIENT_ID", "MIOCREATE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="no credentials"):
        MioCreate()


async def test_bad_task_ids_are_refused_locally(client: MioCreate) -> None:
    with pytest.raises(InvalidInputError):
        await client.get_task("not-a-number")
    with pytest.raises(InvalidInputError):
        await client.create_multi_image_swap(1, {})
    with pytest.raises(InvalidInputError, match="no such file"):
        await client.swap_image("missing.jpg", face=Key("a/b.jpg"))


# --- the uncertain error says the API cannot list tasks -----------------------------------------


def test_typed_errors_are_mioCreate_errors() -> None:
    assert issubclass(UnsupportedFormatError, MioCreateError)
    assert "list" in (SubmissionUncertainError.__doc__ or "")


# --- a failed task raises the class of its code, which is also a TaskFailedError, naming the
# operation the user called -------------------------------------------------------------------


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


# --- against a fake service: a garbled 200 to a creation is uncertain ----------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": 200, "message": "ok", "data": {"task_',
        b"<html><body>Welcome</body></html>",
        b'{"code": 200, "message": "ok", "data": {}}',
        b'{"code": 200, "message": "ok", "data": {"task_id": 1.5}}',
        b'{"code": 200, "message": "ok", "data": {"task_id": true}}',
        b'{"code": 200, "message": "ok", "data": null}',
        b"",
    ],
)
async def test_garbled_creation_reply_is_uncertain(fake: FakeService, body: bytes) -> None:
    fake.raw(Operation.IMAGE_SWAP, body)
    async with fake.client() as mc:
        with pytest.raises(SubmissionUncertainError) as caught:
            await mc.create_image_swap("u/a.jpg", "u/b.jpg")
    assert isinstance(caught.value.__cause__, ProtocolError)
    assert fake.hits[fake.path(Operation.IMAGE_SWAP)] == 1  # never re-sent
    assert "list" in str(caught.value)  # item 28: says the API cannot list tasks


# --- replies cannot crash the client -------------------------------------------------------------


async def test_huge_task_ids_are_fine(fake: FakeService) -> None:
    huge = 2**70 + 3
    fake.reply(Operation.IMAGE_SWAP, {"task_id": str(huge)})
    serve_detail(fake, {"id": huge, "status": 1, "message": "waiting"})
    async with fake.client() as mc:
        task = await mc.create_image_swap("u/a.jpg", "u/b.jpg")
        info = await mc.get_task(task)
    assert task.id == huge
    assert info.id == huge


@pytest.mark.parametrize("expires", ["9" * 30, "99999999999", "-99999999999"])
async def test_absurd_result_expiry_is_clamped(fake: FakeService, expires: str) -> None:
    url = f"{fake.url}/storage/r.jpg?{signed_query('20260101T000000Z', expires)}"
    serve_detail(fake, {"id": 5, "status": 0, "additional_data": image_result(url)})
    async with fake.client() as mc:
        info = await mc.get_task(5)
    assert isinstance(info.result, ImageSwapResult)
    assert info.result.expires_at is not None


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"id": 5, "status": 1.5}, "status"),
        ({"id": 5, "status": True}, "status"),
        ({"id": 5, "status": "nan"}, "status"),
        ({"id": 5.5, "status": 1}, "id"),
        ({"id": 5, "status": None}, "status"),
        (
            {
                "id": 5,
                "status": 0,
                "additional_data": {**image_result("http://x/y"), "merge_key": None},
            },
            "merge_key",
        ),
    ],
)
async def test_bad_detail_values_are_protocol_errors(
    fake: FakeService, detail: dict[str, Any], field: str
) -> None:
    serve_detail(fake, detail)
    async with fake.client() as mc:
        with pytest.raises(ProtocolError) as caught:
            await mc.get_task(5)
    assert field in str(caught.value)


async def test_null_key_is_a_protocol_error(fake: FakeService) -> None:
    fake.reply(Operation.UPLOAD_URL, {"upload_url": storage_url(fake), "key": None})
    async with fake.client() as mc:
        with pytest.raises(ProtocolError) as caught:
            await mc.get_upload_url("a.jpg")
    assert "key" in str(caught.value)


# --- API replies are size-capped -----------------------------------------------------------------


async def test_huge_api_reply_is_a_protocol_error(fake: FakeService) -> None:
    padding = "x" * (64 << 20)
    fake.raw(
        Operation.UPLOAD_URL,
        json_bytes({"code": 200, "message": padding, "data": {"upload_url": "x", "key": "k"}}),
    )
    async with fake.client() as mc:
        with pytest.raises(ProtocolError):
            await mc.get_upload_url("a.jpg")


async def test_huge_creation_reply_is_uncertain(fake: FakeService) -> None:
    fake.raw(Operation.IMAGE_SWAP, b'{"code": 200, "message": "' + b"y" * (64 << 20) + b'"}')
    async with fake.client() as mc:
        with pytest.raises(SubmissionUncertainError) as caught:
            await mc.create_image_swap("u/a.jpg", "u/b.jpg")
    assert isinstance(caught.value.__cause__, ProtocolError)


# --- bad waits, hd and keys are refused at once --------------------------------------------------


@pytest.mark.parametrize("timeout", [math.nan, 0, -1, math.inf])
async def test_wait_refuses_bad_timeouts(fake: FakeService, timeout: float) -> None:
    serve_detail(fake, {"id": 5, "status": 1})
    async with fake.client() as mc:
        with anyio.fail_after(5), pytest.raises((InvalidInputError, ConfigurationError)):
            await mc.wait(5, timeout=timeout)
        with anyio.fail_after(5), pytest.raises((InvalidInputError, ConfigurationError)):
            await mc.swap_image(Key("u/a.jpg"), Key("u/b.jpg"), timeout=timeout)
    assert fake.hits[fake.path(Operation.TASK_DETAIL)] == 0


@pytest.mark.parametrize("hd", ["no", "", 1, None])
async def test_hd_must_be_a_bool(fake: FakeService, hd: Any) -> None:
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.create_image_swap("u/a.jpg", "u/b.jpg", hd=hd)
        with pytest.raises(InvalidInputError):
            await mc.create_video_swap("u/a.mp4", "u/b.jpg", hd=hd)
        with pytest.raises(InvalidInputError):
            await mc.swap_image(Key("u/a.jpg"), Key("u/b.jpg"), hd=hd)
    assert sum(fake.hits.values()) == 0


@pytest.mark.parametrize("key", ["", "   ", 123, None, b"u/a.jpg"])
async def test_keys_must_be_non_empty_strings(fake: FakeService, key: Any) -> None:
    async with fake.client() as mc:
        with pytest.raises(InvalidInputError):
            await mc.create_image_swap(key, "u/b.jpg")
        with pytest.raises(InvalidInputError):
            await mc.create_image_swap("u/a.jpg", key)
        with pytest.raises(InvalidInputError):
            await mc.create_face_detection(key)
        with pytest.raises(InvalidInputError):
            await mc.get_access_url(key)
        with pytest.raises(InvalidInputError):
            await mc.get_upload_url(key)
        with pytest.raises(InvalidInputError):
            await mc.create_multi_image_swap(5, {"u/face.jpg": key})
    assert sum(fake.hits.values()) == 0
