"""The one job runner against the emulator, through a Steps that records each call: the order of
a job's steps, a typed refusal right before the creation sends nothing (where a local budget
plugs in), a refusal without effect is sent again, a doubt only by the user's choice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from miocreate_async import (
    Config,
    MioCreate,
    MioCreateError,
    PollPolicy,
    RetryPolicy,
    SubmissionUncertainError,
)
from miocreate_async._runner import Inputs, JobKind, Runner, SwapResult
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.05)
#: The runner's own tries: quick, and as many as the deadline allows.
TRIES = RetryPolicy(attempts=4, initial=0.01, maximum=0.02)


class BudgetUsedUp(MioCreateError):
    """A local refusal before the creation, as a ``max_tasks`` budget would give."""


class Recorded:
    """Steps that record each call; ``refuse`` makes the intent refuse the job."""

    def __init__(self, refuse: MioCreateError | None = None) -> None:
        self.calls: list[str] = []
        self.refuse = refuse

    async def begin(self) -> None:
        self.calls.append("begin")

    async def uploaded(self) -> None:
        self.calls.append("uploaded")

    async def intent(self, kind: JobKind) -> float | None:
        self.calls.append(f"intent {kind}")
        if self.refuse is not None:
            raise self.refuse
        return None

    async def created(self, task: Any) -> None:
        self.calls.append("created")

    async def refused(self, error: MioCreateError) -> None:
        self.calls.append("refused")

    async def uncertain(self, error: SubmissionUncertainError | None) -> None:
        self.calls.append("uncertain")

    async def succeeded(self, result: SwapResult) -> SwapResult:
        self.calls.append("succeeded")
        return result

    async def ended(self, error: MioCreateError) -> None:
        self.calls.append(f"ended {type(error).__name__}")


@pytest.fixture
async def one_try(emulator: Emulator) -> AsyncIterator[MioCreate]:
    """A client whose session tries each request once: the runner's tries are the only ones."""
    config = Config(base_url=emulator.url, poll=FAST, retry=RetryPolicy(attempts=1))
    async with emulator.client(config=config) as client:
        yield client


def runner(client: MioCreate, tmp_path: Path, steps: Recorded, **options: Any) -> Runner:
    tmp_path.mkdir(exist_ok=True)
    photo = write_sample_photo(tmp_path / "photo.jpg", seed=2, size=(160, 120))
    face = write_sample_face(tmp_path / "face.png", seed=1)

    async def upload() -> Inputs:
        return Inputs(await client.upload(photo), await client.upload(face), video=False)

    async def watch(task: Any) -> Any:
        while True:
            info = await client.get_task(task)
            if info.succeeded:
                return info
            await anyio.sleep(0.02)

    return Runner(
        steps,
        client,
        TRIES,
        upload=upload,
        watch=watch,
        deadline=anyio.current_time() + 30,
        retries_until_deadline=False,
        **options,
    )


def tasks(emulator: Emulator) -> int:
    return len(emulator.ledger["tasks"])


async def test_a_jobs_steps_in_order(
    emulator: Emulator, one_try: MioCreate, tmp_path: Path
) -> None:
    steps = Recorded()
    ended = await runner(one_try, tmp_path, steps).run()
    assert not isinstance(ended, MioCreateError), ended
    assert ended.merge_key
    assert steps.calls == ["begin", "uploaded", "intent image", "created", "succeeded"]
    assert tasks(emulator) == 1


async def test_a_refusal_right_before_the_creation_sends_nothing(
    emulator: Emulator, one_try: MioCreate, tmp_path: Path
) -> None:
    steps = Recorded(refuse=BudgetUsedUp("the budget is used up: not submitted"))
    ended = await runner(one_try, tmp_path, steps).run()
    assert isinstance(ended, BudgetUsedUp)
    assert steps.calls == ["begin", "uploaded", "intent image", "ended BudgetUsedUp"]
    assert tasks(emulator) == 0


async def test_a_refusal_without_effect_is_sent_again_once_created(
    emulator: Emulator, one_try: MioCreate, tmp_path: Path
) -> None:
    emulator.scenario("image_swap", code=802, count=2)
    steps = Recorded()
    ended = await runner(one_try, tmp_path, steps).run()
    assert not isinstance(ended, MioCreateError), ended
    tries = ["intent image", "refused"] * 2 + ["intent image", "created", "succeeded"]
    assert steps.calls == ["begin", "uploaded", *tries]
    assert tasks(emulator) == 1


async def test_a_doubt_is_not_sent_again_unless_the_user_chose_to(
    emulator: Emulator, one_try: MioCreate, tmp_path: Path
) -> None:
    emulator.scenario("image_swap", fault="cut_after")  # created, then the reply is cut
    steps = Recorded()
    ended = await runner(one_try, tmp_path / "no", steps).run()
    assert isinstance(ended, SubmissionUncertainError)
    assert steps.calls == [
        "begin",
        "uploaded",
        "intent image",
        "uncertain",
        "ended SubmissionUncertainError",
    ]
    assert tasks(emulator) == 1

    emulator.scenario("image_swap", fault="cut_after")
    chosen = Recorded()
    ended = await runner(one_try, tmp_path / "yes", chosen, resubmit_uncertain=True).run()
    assert not isinstance(ended, MioCreateError), ended
    assert chosen.calls[2:] == ["intent image", "uncertain", "intent image", "created", "succeeded"]
    assert tasks(emulator) == 3  # paid twice, by the user's choice
