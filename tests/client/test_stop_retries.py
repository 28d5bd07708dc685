"""``stop_retries=``: a creation's retries of refusals stop when the caller says so (a batch
passes its circuit breaker), as an option of that one call: no context variable carries it, so
another call in the same task retries as usual. Counted on the emulator's ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from miocreate_async import HTTPStatusError, MioCreate, RequestQuotaError, RetryPolicy
from miocreate_async.emulator import Emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

#: Refusals that created nothing, which a creation retries.
REFUSALS = [
    pytest.param({"code": 802}, RequestQuotaError, id="802"),
    pytest.param({"fault": "http", "http_status": 429}, HTTPStatusError, id="429"),
]


def creations(emulator: Emulator) -> int:
    return sum(r["operation"] == "image_swap" for r in emulator.ledger["requests"])


async def keys(client: MioCreate, photo: Path, face: Path) -> tuple[str, str]:
    return await client.upload(photo), await client.upload(face)


@pytest.mark.parametrize(("refusal", "error"), REFUSALS)
async def test_a_stopped_creation_raises_its_refusal_at_once(
    emulator: Emulator,
    sample_photo: Path,
    sample_face: Path,
    refusal: dict[str, Any],
    error: type[Exception],
) -> None:
    # A retry would wait 30 s first: far past the 10 s this test allows.
    retry = RetryPolicy(attempts=5, initial=30.0, jitter=False)
    async with emulator.client(retry=retry) as client:
        image, face = await keys(client, sample_photo, sample_face)
        emulator.scenario("image_swap", count=4, **refusal)
        with anyio.fail_after(10), pytest.raises(error):
            await client.create_image_swap(image, face, stop_retries=lambda: True)
    assert creations(emulator) == 1
    assert emulator.ledger["tasks"] == []


async def test_the_stop_is_asked_before_each_retry(
    emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    asked = 0

    def tripped() -> bool:
        nonlocal asked
        asked += 1
        return asked >= 3  # the breaker trips after the second retry

    async with emulator.client(retry=RetryPolicy(attempts=10, initial=0.01)) as client:
        image, face = await keys(client, sample_photo, sample_face)
        emulator.scenario("image_swap", code=802, count=9)
        with anyio.fail_after(10), pytest.raises(RequestQuotaError):
            await client.create_image_swap(image, face, stop_retries=tripped)
    assert asked == 3
    assert creations(emulator) == 3  # the first try and two retries
    assert emulator.ledger["tasks"] == []


async def test_the_stop_belongs_to_its_call_only(
    emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    """A stopped creation and one without the option, in the same task: the second is
    retried past its refusal and creates its task."""
    async with emulator.client(retry=RetryPolicy(attempts=5, initial=0.01)) as client:
        image, face = await keys(client, sample_photo, sample_face)
        emulator.scenario("image_swap", code=802, count=1)
        with anyio.fail_after(10), pytest.raises(RequestQuotaError):
            await client.create_image_swap(image, face, stop_retries=lambda: True)
        emulator.scenario("image_swap", code=802, count=1)
        with anyio.fail_after(10):
            task = await client.create_image_swap(image, face)
    assert creations(emulator) == 3
    assert [t["id"] for t in emulator.ledger["tasks"]] == [task.id]
