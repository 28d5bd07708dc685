"""Results read into memory have a cap; a result stream abandoned mid-way leaks nothing."""

from __future__ import annotations

import gc
from pathlib import Path

import anyio
import attrs
import pytest

from miocreate_async import ImageSwapResult, MioCreate, ResultTooLargeError
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio


async def swapped(client: MioCreate, photo: Path, face: Path) -> ImageSwapResult:
    result = await client.swap_image(photo, face=face)
    assert isinstance(result, ImageSwapResult)
    return result


async def test_read_refuses_a_result_over_max_bytes_before_any_request(
    client: MioCreate, emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    result = await swapped(client, sample_photo, sample_face)
    gets = len(emulator.ledger["requests"])
    with pytest.raises(ResultTooLargeError, match="max_bytes"):
        await result.read(max_bytes=result.size - 1)
    assert len(emulator.ledger["requests"]) == gets  # the declared size said so
    assert await result.read(max_bytes=result.size) == await result.read()


async def test_read_stops_once_past_max_bytes_whatever_the_declared_size(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    result = await swapped(client, sample_photo, sample_face)
    understated = attrs.evolve(result, size=10)  # a store sending more than it said
    with pytest.raises(ResultTooLargeError, match="more than 100 bytes"):
        await understated.read(max_bytes=100)


async def test_an_abandoned_stream_leaks_nothing(
    client: MioCreate, sample_photo: Path, sample_face: Path
) -> None:
    result = await swapped(client, sample_photo, sample_face)
    for _ in range(3):
        chunks = result.iter_bytes(chunk_size=16)
        assert len(await anext(chunks)) <= 16
        del chunks  # neither exhausted nor closed
    gc.collect()
    await anyio.sleep(0.1)
    gc.collect()
    # ResourceWarning and unraisable exceptions are errors in this suite: an unclosed
    # response or connection fails the test here or at the client's close.
    assert len(await result.read()) == result.size
