"""A client told no rate finds the service's request quota itself: no limit until the first
refusal (code 802), then about the rate the service accepted, lower on each later refusal and
higher while none come (issue 17)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from miocreate_async import Config, RetryPolicy
from miocreate_async._pacing import AdaptiveRateLimiter
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_follows_the_refusals() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(clock)
    for _ in range(40):
        limiter.accepted()
    assert limiter.rate is None  # no refusal yet: no limit
    limiter.refused(sent_at=clock.now)
    assert limiter.rate == 40  # what the service took over the last second
    clock.now += 0.5
    limiter.refused(sent_at=clock.now)  # sent before the first drop could show: no change
    assert limiter.rate == 40
    clock.now += 1.0
    limiter.refused(sent_at=clock.now)
    assert limiter.rate == pytest.approx(32)  # a fifth less
    for _ in range(3):  # three seconds without a refusal: 5 % more each
        clock.now += 1.0
        limiter.accepted()
    assert limiter.rate == pytest.approx(32 * 1.05**3)


async def test_acquire_spaces_requests_once_limited() -> None:
    limiter = AdaptiveRateLimiter()
    with anyio.fail_after(1):
        for _ in range(100):
            await limiter.acquire()  # no limit: no wait
    limiter.accepted()
    limiter.refused(sent_at=0.0)  # long ago... but no drop yet: it counts
    assert limiter.rate == 1.0
    limiter.rate = 50.0
    start = anyio.current_time()
    for _ in range(6):
        await limiter.acquire()
    assert anyio.current_time() - start >= 5 / 50 - 0.01


async def _refusals(tmp_path: Path, sample_face: Path, *, adapt: bool) -> int:
    """802 answers while 120 task details are asked, 30 at a time, of a 20 requests/s quota."""
    retry = RetryPolicy(attempts=30, initial=0.05, maximum=0.5)
    data = tmp_path / f"emulator-{adapt}"
    async with Emulator(latency=60, seed=1, request_quota=20, data_dir=data) as emulator:
        config = Config(base_url=emulator.url, retry=retry, adapt_rate=adapt)
        async with emulator.client(config=config) as client:
            task = await client.create_face_detection(await client.upload(sample_face))
            for _ in range(4):
                async with anyio.create_task_group() as group:
                    for _ in range(30):
                        group.start_soon(client.get_task, task)
        requests = emulator.ledger["requests"]
    return sum(1 for request in requests if request.get("code") == 802)


@pytest.mark.e2e
async def test_a_quota_nobody_told_the_client_costs_few_refusals(
    tmp_path: Path, sample_face: Path
) -> None:
    told_nothing = await _refusals(tmp_path, sample_face, adapt=True)
    fixed = await _refusals(tmp_path, sample_face, adapt=False)
    # Every call got through either way; adapting, far fewer were refused on the way.
    assert told_nothing < fixed / 2
