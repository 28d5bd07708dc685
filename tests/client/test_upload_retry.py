"""A PUT that storage cuts (the connection closed with no reply) is sent again whole, at once.

aiohttp resends an idempotent request once on a fresh connection when the first one dies, and
writes the same body payload again: a file body must start again from its first byte. Before
the fix the resend carried the headers and none of the bytes the cut write had already sent,
and storage and the client waited for each other until the 60 s socket read timeout.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import anyio
import pytest

from miocreate_async import MioCreate
from miocreate_async.emulator import Emulator, write_sample_video

pytestmark = pytest.mark.anyio

BACKENDS: list[Any] = [pytest.param(("asyncio", {}), id="sendfile")]
try:
    import uvloop  # noqa: F401  # uvloop has no loop.sendfile: the handle is read instead
except ImportError:  # pragma: no cover - uvloop is a dev dependency where it builds
    pass
else:
    BACKENDS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="reads"))

#: Far below the client's default 60 s socket read and stall timeouts, which stay in force:
#: an upload that waits for a reply to a body it never sent fails here instead.
DEADLINE = 10.0


@pytest.fixture(params=["photo", "video", "large_video"])
def media(request: pytest.FixtureRequest, tmp_path: Path, sample_photo: Path) -> Path:
    if request.param == "photo":
        return sample_photo  # a single sendfile piece
    if request.param == "video":
        return write_sample_video(tmp_path / "clip.mp4", duration=2.5, size=64 * 1024)
    # Many pieces: the cut lands while the first write is part way through the file.
    return write_sample_video(tmp_path / "long.mp4", duration=30.0, size=8 * 1024 * 1024)


def storage_puts(emulator: Emulator, key: str) -> list[tuple[int | None, str | None]]:
    """(status, fault) of each PUT of ``key`` storage saw, in order."""
    return [
        (request["status"], request["fault"])
        for request in emulator.ledger["requests"]
        if request["operation"] == "storage_put" and key in request["path"]
    ]


@pytest.mark.parametrize("anyio_backend", BACKENDS)
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
async def test_a_cut_upload_is_stored_by_one_more_put(
    emulator: Emulator,
    client: MioCreate,
    media: Path,
    sample_face: Path,
    warm: bool,
    anyio_backend: Any,
) -> None:
    if warm:  # the client's pooled connection has already carried a whole upload
        await client.upload(sample_face)
    emulator.scenario("storage_put", fault="cut")
    seen: list[int] = []
    with anyio.fail_after(DEADLINE):
        key = await client.upload(media, progress=lambda done, _total: seen.append(done))

    data = media.read_bytes()
    assert storage_puts(emulator, key) == [(None, "cut"), (200, None)]
    (upload,) = [u for u in emulator.ledger["uploads"] if u["key"] == key]
    assert upload["status"] == "stored"
    assert upload["size"] == upload["content_length"] == len(data)
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
    assert seen[-1] == len(data)
