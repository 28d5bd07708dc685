"""Limits shared by every worker: the request quota (GCRA in Redis) and one upload per face."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from redis.asyncio import Redis

from .._errors import MioCreateTimeoutError
from . import _scripts

__all__ = ["SharedRateLimiter", "SharedUploads", "file_digest"]


class SharedRateLimiter:
    """At most ``rate`` requests a second over every process that shares ``key`` (GCRA).

    Each request reserves the next free slot in Redis (by the server's clock) and sleeps until
    it; a burst of ``burst`` requests may go at once. Given to ``MioCreate(rate_limit=...)``.
    """

    def __init__(self, redis: Redis, key: str, rate: float, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._key = key
        self._interval_ms = 1000.0 / rate
        self._burst = burst
        self._script = redis.register_script(_scripts.GCRA)

    async def acquire(self) -> None:
        wait_ms = float(
            await self._script(keys=[self._key], args=[repr(self._interval_ms), self._burst])
        )
        if wait_ms > 0:
            await anyio.sleep(wait_ms / 1000)


def file_digest(path: str) -> str:
    """The sha256 of a file, read in chunks (run it off the event loop)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class SharedUploads:
    """A face used by many jobs is uploaded once per batch: its key is kept in Redis under its
    content hash, with its upload time, and reused for ``ttl`` seconds.

    The first worker to need it takes a short lock and uploads; the others wait for the key.
    """

    def __init__(self, redis: Redis, prefix: str, ttl: float, wait: float = 600.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl
        self._wait = wait
        self._local: dict[str, anyio.Lock] = {}

    async def key_of(self, digest: str, upload: Callable[[], Awaitable[str]]) -> str:
        # One request to Redis per process and face, however many jobs want it at once.
        lock = self._local.setdefault(digest, anyio.Lock())
        async with lock:
            return await self._shared(digest, upload)

    async def _shared(self, digest: str, upload: Callable[[], Awaitable[str]]) -> str:
        name = f"{self._prefix}upload:{digest}"
        with anyio.move_on_after(self._wait):
            while True:
                found = await self._redis.get(name)
                if found is not None:
                    return str(json.loads(found)["key"])
                # The lock outlives no crash: it ends by itself like a lease.
                if await self._redis.set(name + ":lock", "1", nx=True, px=120_000):
                    try:
                        key = await upload()
                        record = {"key": key, "uploaded_at": time.time()}
                        await self._redis.set(name, json.dumps(record), px=int(self._ttl * 1000))
                        return key
                    finally:
                        await self._redis.delete(name + ":lock")
                await anyio.sleep(0.2)
        raise MioCreateTimeoutError(
            "waited too long for another worker to upload a shared face", operation="upload"
        )
