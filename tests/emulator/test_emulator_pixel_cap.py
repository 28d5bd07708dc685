"""The emulator's pixel cap: an image of more than MAX_PIXELS is refused with 701 from its header,
before anything decodes it (its pixels would need gigabytes of arrays in vision mode)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import FAST_POLL

from miocreate_async import Config, FileError, MioCreate
from miocreate_async.emulator import Emulator, samples
from miocreate_async.emulator._imaging import MAX_PIXELS

pytestmark = pytest.mark.anyio


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, *, rows: int) -> bytes:
    """An RGB PNG claiming ``width`` x ``height``, whose data holds ``rows`` black rows."""
    squeeze = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    data = b"".join(squeeze.compress(row) for _ in range(rows)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


@pytest.fixture(params=[False, True], ids=["cartoon", "vision"])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MioCreate]:
    vision: bool = request.param
    if vision and not samples.vision_available():
        pytest.skip("needs the vision extra")
    async with Emulator(vision=vision, latency=0.02, seed=1, data_dir=tmp_path / "emu") as emu:
        client = emu.client(config=Config(base_url=emu.url, poll=FAST_POLL))
        async with client:
            yield client
            assert emu.ledger["tasks"] == []  # refused before a task (or a credit) was spent


async def test_a_header_claiming_40000_by_40000_pixels_is_701(api: MioCreate) -> None:
    huge = _png(40_000, 40_000, rows=1)
    assert len(huge) < 1000  # a small file: only its header says how big it would be
    with pytest.raises(FileError) as refused:
        await api.swap_image(huge, samples.face())
    assert refused.value.code == 701


async def test_a_real_image_just_above_the_cap_is_701_not_decoded(api: MioCreate) -> None:
    # 81 megapixels: under Pillow's own bomb warning (89 megapixels), so only the cap stops it;
    # a complete, valid image (its zeros compress a thousandfold).
    side = 9000
    assert side * side > MAX_PIXELS
    image = _png(side, side, rows=side)
    assert len(image) < 400_000
    with pytest.raises(FileError) as refused:
        await api.swap_image(image, samples.face())
    assert refused.value.code == 701
    assert "pixels" in str(refused.value)
    with pytest.raises(FileError):
        await api.swap_image(samples.photo(), image)  # the new face is checked alike
