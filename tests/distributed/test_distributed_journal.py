"""The shared journal's rules, against a real Redis: fencing, leases, takeover."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from redis.asyncio import Redis

from miocreate_async import SubmissionUncertainError
from miocreate_async._journal import (
    JobState,
    Journal,
    JournalMeta,
    JournalMismatchError,
    JournalStateError,
    NewJob,
)
from miocreate_async.distributed._journal import RedisJournal

pytestmark = pytest.mark.anyio

META = JournalMeta(base_url="http://api.test", client="abc", library_version="1")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def journal(redis_url: str) -> AsyncIterator[RedisJournal]:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        journal = RedisJournal(redis, "rules")
        await journal.open(META)
        await journal.register([NewJob("a", 0, "fp"), NewJob("b", 1, "fp")])
        yield journal
    finally:
        await redis.aclose()


async def test_it_is_a_journal_and_refuses_another_account(journal: RedisJournal) -> None:
    assert isinstance(journal, Journal)
    other = JournalMeta(base_url="http://api.test", client="xyz", library_version="1")
    with pytest.raises(JournalMismatchError):
        await journal.check(other)
    summary = await journal.counts()
    assert summary[JobState.PENDING] == 2


async def test_a_stale_owner_is_fenced_off(journal: RedisJournal) -> None:
    first = await journal.claim("a", "w1", lease=0.2)
    assert first.outcome == "claimed"
    assert (await journal.claim("a", "w2", lease=5)).outcome == "busy"
    await anyio.sleep(0.3)  # w1 stops renewing: its lease ends
    second = await journal.claim("a", "w2", lease=5)
    assert second.outcome == "claimed"
    assert second.epoch == first.epoch + 1
    # w1 wakes up: it can neither renew nor move the job, above all not to "submitting".
    assert not await journal.renew("a", first.epoch, 5)
    pending = [JobState.PENDING]
    moved = await journal.move("a", first.epoch, pending, JobState.SUBMITTING, lease=5)
    assert moved == "fenced"
    assert await journal.move("a", second.epoch, pending, JobState.SUBMITTING, lease=5) == "ok"


async def test_a_job_left_submitting_becomes_uncertain_and_is_never_sent_again(
    journal: RedisJournal,
) -> None:
    claim = await journal.claim("b", "w1", lease=0.2)
    pending = [JobState.PENDING]
    assert await journal.move("b", claim.epoch, pending, JobState.SUBMITTING, lease=0.2) == "ok"
    await anyio.sleep(0.3)  # w1 died while its creation request was out
    assert await journal.reap(lease=5) == ["b"]
    assert (await journal.claim("b", "w2", lease=5)).outcome == "uncertain"
    record = await journal.get("b")
    assert record is not None
    assert record.state is JobState.UNCERTAIN
    assert record.error is not None
    assert record.error.type == SubmissionUncertainError.__name__
    # Once final, nobody claims it again, and it has exactly one outcome.
    assert (await journal.claim("b", "w3", lease=5)).outcome == "final"
    assert await journal.redis.xlen(journal.outcomes_key) == 1


async def test_an_unfenced_transition_checks_the_state(journal: RedisJournal) -> None:
    with pytest.raises(JournalStateError):
        await journal.transition("a", JobState.SUCCEEDED, JobState.DOWNLOADED)
    record = await journal.transition("a", JobState.PENDING, JobState.FAILED)
    assert record.state is JobState.FAILED


async def test_a_batch_name_with_a_colon_is_refused(tmp_path: Path, redis_url: str) -> None:
    from miocreate_async import ConfigurationError

    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ConfigurationError):
            RedisJournal(redis, "a:b")
    finally:
        await redis.aclose()
