"""The transport: taskiq-redis's stream broker. A message carries a batch name and a job id.

The stream is at-least-once (a message left unacknowledged for ``claim_idle`` seconds is given
to another worker), so it is only the transport: the journal decides whether a task may be
created. A worker acknowledges a message once the journal has recorded its claim on the job.
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

__all__ = ["GROUP", "QUEUE", "TASK_NAME", "kick", "make_broker", "requeue_idle"]

QUEUE = "miocreate:queue"
GROUP = "miocreate"
TASK_NAME = "miocreate.swap_job"


def make_broker(
    redis_url: str, *, claim_idle: float = 60.0, block: float = 2.0
) -> RedisStreamBroker:
    return RedisStreamBroker(
        redis_url,
        queue_name=QUEUE,
        consumer_group_name=GROUP,
        # A new group reads the stream from its start: nothing sent before it existed is lost.
        consumer_id="0",
        # One message at a time: one prefetched would sit unacknowledged while jobs run.
        xread_count=1,
        xread_block=int(block * 1000),
        idle_timeout=int(claim_idle * 1000),
        # The lock around reclaiming idle messages; it must outlive no killed worker for long.
        unacknowledged_lock_timeout=max(1.0, block),
    )


async def kick(broker: RedisStreamBroker, batch: str, job_id: str) -> None:
    kicker: AsyncKicker[[str, str], None] = AsyncKicker(TASK_NAME, broker, {})
    await kicker.kiq(batch, job_id)


async def requeue_idle(redis: Redis, consumer: str, idle: float, count: int = 100) -> list[str]:
    """Append again, and acknowledge, the messages left unacknowledged for ``idle`` seconds (by
    a reader that died): the ids of those moved. XAUTOCLAIM gives each to one caller only."""
    claimed = cast(
        "list[object]",
        await redis.xautoclaim(QUEUE, GROUP, consumer, int(idle * 1000), "0-0", count=count),
    )
    messages = cast("list[tuple[str, dict[FieldT, EncodableT] | None]]", claimed[1])
    moved = []
    for message_id, fields in messages:
        async with redis.pipeline(transaction=True) as pipe:
            if fields:  # (an entry deleted meanwhile has none: only acknowledged)
                pipe.xadd(QUEUE, fields)
            pipe.xack(QUEUE, GROUP, message_id)
            await pipe.execute()
        moved.append(message_id)
    return moved
