"""swap_image runs the job runner with the one-call jobs' options: a creation that may have
reached the service is never sent again, and refusals are tried only as many times as the
session's retry policy says (the runner does not retry them until a deadline of its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from miocreate_async import (
    Config,
    MioCreate,
    PollPolicy,
    RequestQuotaError,
    RetryPolicy,
    SubmissionUncertainError,
)
from miocreate_async.emulator import Emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.05)


@pytest.fixture
async def two_tries(emulator: Emulator) -> AsyncIterator[MioCreate]:
    config = Config(
        base_url=emulator.url, poll=FAST, retry=RetryPolicy(attempts=2, initial=0.01, maximum=0.02)
    )
    async with emulator.client(config=config) as client:
        yield client


def creations(emulator: Emulator) -> int:
    return sum(1 for r in emulator.ledger["requests"] if r["operation"] == "image_swap")


async def test_a_swap_image_whose_creation_is_uncertain_is_not_created_again(
    emulator: Emulator, two_tries: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    emulator.scenario(operation="image_swap", fault="cut_after")  # created, the reply cut
    with pytest.raises(SubmissionUncertainError) as caught:
        await two_tries.swap_image(sample_photo, sample_face)
    assert caught.value.operation == "swap_image"
    assert len(emulator.ledger["tasks"]) == 1
    assert creations(emulator) == 1


async def test_a_swap_image_tries_refusals_only_as_the_session_allows(
    emulator: Emulator, two_tries: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    emulator.scenario(operation="image_swap", code=802, count=5)
    with pytest.raises(RequestQuotaError):
        await two_tries.swap_image(sample_photo, sample_face, timeout=30)
    assert creations(emulator) == 2  # the session's two attempts; the runner adds none
    assert emulator.ledger["tasks"] == []
