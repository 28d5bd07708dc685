"""The transport: taskiq-redis's stream broker. A message carries a batch name and a job id.

The stream is at-least-once (a message left unacknowledged for ``claim_idle`` seconds is
queued again by the workers' ``requeue_idle``), so it is only the transport: the journal
decides whether a task may be created. A worker acknowledges a message once the journal has
recorded its claim on the job.

Its ``listen`` reads new messages only: taskiq-redis's own reclaims idle messages only after a
read that returned some (a killed worker's stayed pending on an idle stream: the stall of
issue 23), and its lock around them fails after a Redis restart (its script is gone).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any, cast

import anyio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT
from taskiq import AckableMessage, AsyncBroker
from taskiq.acks import AcknowledgeType
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

__all__ = [
    "GROUP",
    "QUEUE",
    "TASK_NAME",
    "connect",
    "kick",
    "make_broker",
    "requeue_idle",
    "trim_queue",
]

QUEUE = "miocreate:queue"
GROUP = "miocreate"
TASK_NAME = "miocreate.swap_job"


logger = logging.getLogger("miocreate_async.distributed")

#: A command that finds Redis gone (a restart) tries again, backing off up to 2 s, for about
#: 30 s; then its error goes up. With the append-only file nothing was lost meanwhile.
RECONNECT_TRIES = 18


def _retrying() -> dict[str, Any]:
    return {
        "retry": Retry(ExponentialWithJitterBackoff(cap=2.0, base=0.1), RECONNECT_TRIES),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, ConnectionError, OSError],
    }


def connect(redis_url: str) -> Redis:
    """A client that reconnects, with a bounded backoff, when Redis restarts."""
    return Redis.from_url(redis_url, decode_responses=True, **_retrying())


class _StreamBroker(RedisStreamBroker):
    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """New messages, one read at a time; a Redis that is away is waited for (backing off
        up to 2 s between tries), never a reason to stop listening."""
        pause = 0.1
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                try:
                    fetched = await redis.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        count=self.count,
                    )
                except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                    logger.warning("reading the queue: %s; trying again in %.1f s", error, pause)
                    await anyio.sleep(pause)
                    pause = min(2.0, pause * 2)
                    continue
                except ResponseError as error:
                    if "NOGROUP" not in str(error):
                        raise
                    # The stream is gone (a Redis emptied): its messages' batches are lost.
                    logger.error("the queue is gone from Redis (%s): created again", error)
                    await self._declare_consumer_group()
                    continue
                pause = 0.1
                for stream, messages in cast("list[tuple[bytes, list[Any]]]", fetched or []):
                    for message_id, fields in messages:
                        yield AckableMessage(
                            data=fields[b"data"],
                            ack=self._ack_generator(id=message_id, queue_name=stream.decode()),
                        )


def make_broker(
    redis_url: str, *, claim_idle: float = 60.0, block: float = 2.0
) -> RedisStreamBroker:
    return _StreamBroker(
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
        **_retrying(),
    )


async def kick(broker: AsyncBroker, batch: str, job_id: str) -> None:
    # Acknowledged by the task once the journal recorded its claim (whatever the receiver's
    # default), so that a message is not lost with a worker killed before that.
    kicker: AsyncKicker[[str, str], None] = AsyncKicker(
        TASK_NAME, broker, {"ack_type": AcknowledgeType.MANUAL.value}
    )
    await kicker.kiq(batch, job_id)


async def requeue_idle(
    redis: Redis, stream: tuple[str, str], consumer: str, idle: float, count: int = 100
) -> list[str]:
    """Append again, and acknowledge, the messages of ``stream`` (queue, group) left
    unacknowledged for ``idle`` seconds (by a reader that died): the ids of those moved.
    XAUTOCLAIM gives each to one caller only."""
    queue, group = stream
    claimed = cast(
        "list[object]",
        await redis.xautoclaim(queue, group, consumer, int(idle * 1000), "0-0", count=count),
    )
    messages = cast("list[tuple[str, dict[FieldT, EncodableT] | None]]", claimed[1])
    moved = []
    for message_id, fields in messages:
        async with redis.pipeline(transaction=True) as pipe:
            if fields:  # (an entry deleted meanwhile has none: only acknowledged)
                pipe.xadd(queue, fields)
            pipe.xack(queue, group, message_id)
            await pipe.execute()
        moved.append(message_id)
    return moved


async def trim_queue(redis: Redis, stream: tuple[str, str]) -> None:
    """Drop the messages of ``stream`` (queue, group) every worker is done with (delivered and
    acknowledged): it keeps only those still to read or still pending. With one group only
    (another group's readers may not have read them)."""
    queue, name = stream
    groups = await redis.xinfo_groups(queue)
    if len(groups) != 1 or groups[0]["name"] != name:
        return
    pending = await redis.xpending(queue, name)
    bound = pending["min"] if pending["pending"] else groups[0]["last-delivered-id"]
    if bound and bound != "0-0":
        await redis.xtrim(queue, minid=bound, approximate=False)
