"""A file is sent by the kernel from one open handle (``loop.sendfile``), or read from that
handle where the connection cannot (uvloop, TLS): the same bytes either way, progress as it
goes, and a file changed after its checks is never stored (issue 17)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from miocreate_async import InvalidInputError
from miocreate_async._transfer._inputs import prepare_upload
from miocreate_async.emulator import Emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"

BACKENDS: list[Any] = [pytest.param(("asyncio", {}), id="sendfile")]
try:
    import uvloop  # noqa: F401  # uvloop has no loop.sendfile: the handle is read instead
except ImportError:  # pragma: no cover - uvloop is a dev dependency where it builds
    pass
else:
    BACKENDS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="reads"))


def stored(emulator: Emulator, key: str) -> dict[str, Any]:
    (upload,) = [u for u in emulator.ledger["uploads"] if u["key"] == key]
    assert isinstance(upload, dict)
    return upload


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_a_file_is_stored_exactly_with_progress_to_its_end(
    tmp_path: Path, anyio_backend: Any
) -> None:
    data = PNG_HEAD + os.urandom(5 * 1024 * 1024 + 12345)  # several pieces and a ragged tail
    path = tmp_path / "face.png"
    path.write_bytes(data)
    seen: list[int] = []
    async with Emulator(data_dir=tmp_path / "emulator") as emulator, emulator.client() as client:
        key = await client.upload(path, progress=lambda done, _total: seen.append(done))
        upload = stored(emulator, key)
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
    assert upload["size"] == upload["content_length"] == len(data)
    assert seen[-1] == len(data)
    assert seen == sorted(seen)


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_a_file_changed_after_its_checks_is_not_stored(
    tmp_path: Path, anyio_backend: Any
) -> None:
    path = tmp_path / "face.png"
    path.write_bytes(PNG_HEAD + b"a" * 300_000)
    async with Emulator(data_dir=tmp_path / "emulator") as emulator, emulator.client() as client:
        prepared = await prepare_upload(path)  # checked...
        path.write_bytes(PNG_HEAD + b"b" * 300_000)  # ...then rewritten, the same size
        with pytest.raises(InvalidInputError, match="changed"):
            await client._put(prepared, None)
        ledger = emulator.ledger
    assert [u for u in ledger["uploads"] if u["status"] == "stored"] == []
    assert [r for r in ledger["requests"] if r["operation"] == "storage_put"] == []
