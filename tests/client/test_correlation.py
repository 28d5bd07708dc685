"""Correlation ids: errors, results and every log record carry the task id, the batch job's id
and the service's request id (the reply's ``x-request-id``, ``cf-ray`` or a configured header)
where they are known; the emulator sends an ``x-request-id`` on each API reply and its ledger
keeps it, so each id is checked against the reply it came from."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from miocreate_async import (
    BadRequestError,
    Config,
    MioCreate,
    NoFaceDetectedError,
    RetryPolicy,
    SwapJob,
)
from miocreate_async.emulator import Emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def replies(emulator: Emulator, operation: str) -> list[dict[str, Any]]:
    return [r for r in emulator.ledger["requests"] if r["operation"] == operation]


async def test_an_api_error_carries_the_replys_request_id(
    client: MioCreate, emulator: Emulator
) -> None:
    emulator.scenario("upload_url", code=400)
    with pytest.raises(BadRequestError) as raised:
        await client.get_upload_url("a.jpg")
    sent = replies(emulator, "upload_url")[-1]["request_id"]
    assert sent
    assert raised.value.request_id == sent
    assert f"request_id={sent}" in str(raised.value)


async def test_tasks_and_results_carry_the_request_id_of_their_reply(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    image, face = await client.upload(sample_photo), await client.upload(sample_face)
    task = await client.create_image_swap(image, face)
    assert task.request_id == replies(emulator, "image_swap")[-1]["request_id"]
    result = await client.wait(task)
    assert result.request_id == replies(emulator, "task_detail")[-1]["request_id"]
    info = await client.get_task(task)
    assert info.request_id == replies(emulator, "task_detail")[-1]["request_id"]
    assert info.result is not None
    assert info.result == result  # the reply's id does not make two results differ


async def test_a_failed_task_carries_its_task_and_request_id(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    emulator.scenario("image_swap", task_fail={"code": 602, "message": "no face"})
    with pytest.raises(NoFaceDetectedError) as raised:
        await client.swap_image(sample_photo, sample_face)
    task_id = emulator.ledger["tasks"][-1]["id"]
    assert raised.value.task_id == task_id
    assert raised.value.request_id == replies(emulator, "task_detail")[-1]["request_id"]


async def test_every_log_record_carries_the_ids(
    emulator: Emulator,
    sample_photo: Path,
    sample_face: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="miocreate_async")
    emulator.scenario("task_detail", code=500)  # one retried poll: a retry record
    retry = RetryPolicy(attempts=3, initial=0.01)
    async with emulator.client(retry=retry) as client:
        image, face = await client.upload(sample_photo), await client.upload(sample_face)
        task = await client.create_image_swap(image, face)
        await client.wait(task)
    records = [r for r in caplog.records if r.name.startswith("miocreate_async")]
    assert records
    for record in records:
        assert {"task_id", "job_id", "request_id"} <= set(vars(record)), record.getMessage()
    sent = {r["request_id"] for r in emulator.ledger["requests"]}
    retried = [r for r in records if "retrying" in r.getMessage()]
    assert retried
    assert vars(retried[0])["request_id"] in sent
    waited = [r for r in records if r.getMessage().startswith("wait done")]
    assert [vars(r)["task_id"] for r in waited] == [task.id]
    assert vars(waited[0])["request_id"] in sent


async def test_a_batch_jobs_error_and_records_carry_its_job_id(
    client: MioCreate,
    emulator: Emulator,
    sample_photo: Path,
    sample_face: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="miocreate_async")
    emulator.scenario("upload_url", code=500)  # one retry, logged inside the job
    emulator.scenario("image_swap", task_fail={"code": 602, "message": "no face"})
    jobs = [SwapJob(sample_photo, sample_face)]
    async with client.swap_many(jobs, journal=tmp_path / "journal.db") as results:
        outcomes = [outcome async for outcome in results]
    (outcome,) = outcomes
    assert outcome.error is not None
    assert outcome.job_id
    assert outcome.error.job_id == outcome.job_id
    assert outcome.error.task_id == outcome.task_id
    assert outcome.error.request_id == replies(emulator, "task_detail")[-1]["request_id"]
    retried = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [vars(r)["job_id"] for r in retried] == [outcome.job_id]


@pytest.fixture
async def gateway() -> AsyncIterator[str]:
    """A service behind a gateway that names its replies in ``cf-ray`` and ``x-trace``."""

    async def refuse(request: web.Request) -> web.Response:
        headers = {"cf-ray": "8f2a-LHR", "x-trace": "trace-7"}
        return web.json_response({"code": 400, "message": "bad", "data": None}, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [(None, "8f2a-LHR"), ("x-trace", "trace-7"), (("x-none", "X-Trace"), "trace-7")],
)
async def test_the_request_id_header_is_a_setting(
    gateway: str, headers: Any, expected: str
) -> None:
    config = (
        Config(base_url=gateway)
        if headers is None
        else Config(base_url=gateway, request_id_headers=headers)
    )
    async with MioCreate(token="t", config=config) as client:
        with pytest.raises(BadRequestError) as raised:
            await client.get_upload_url("a.jpg")
    assert raised.value.request_id == expected
