"""Stored objects on disk: streamed in from presigned PUTs, or written by the task engine.

Objects live under ``<data_dir>/objects`` named by a hash of their key (keys hold slashes and
come from outside). A PUT streams to a partial file in modest chunks, written and hashed off
the event loop, and becomes visible only once complete.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import attrs

from .._formats import SNIFF_BYTES, MediaType, sniff
from ._s3 import S3Error

__all__ = ["Storage", "StoredObject", "link_or_copy"]

T = TypeVar("T")

# Bytes gathered before each write: few thread hops, flat memory per upload.
_WRITE_BLOCK = 1 << 20


@attrs.define(eq=False)
class StoredObject:
    key: str
    path: Path
    size: int
    media: MediaType | None
    sha256: str | None = None
    #: Whether an image decodes (checked once, on first use).
    decodable: bool | None = None


class _PartialFile:
    """A file being received; plain methods, run in a worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 -- closed by commit/discard
        self._hash = hashlib.sha256()

    def write(self, block: bytes) -> None:
        self._file.write(block)
        self._hash.update(block)

    def commit(self, destination: Path) -> str:
        self._file.close()
        os.replace(self.path, destination)
        return self._hash.hexdigest()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def link_or_copy(source: Path, destination: Path) -> None:
    """A second name for a file: a hard link costs no disk, a copy where links fail."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copyfile(source, destination)


class Storage:
    def __init__(self, root: Path, executor: Executor) -> None:
        self._root = root
        #: Where file work runs, off the event loop.
        self.executor = executor
        self._objects: dict[str, StoredObject] = {}
        #: Every file name this storage handed out: reset deletes these and nothing else, so
        #: a user's own files in a ``--data-dir`` are never touched.
        self._written: set[Path] = set()
        self._make_dirs()

    def _make_dirs(self) -> None:
        (self._root / "objects").mkdir(parents=True, exist_ok=True)
        (self._root / "partial").mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self._root

    def get(self, key: str) -> StoredObject | None:
        return self._objects.get(key)

    def path_for(self, key: str) -> Path:
        """Where the object ``key`` is (or will be) written."""
        path = self._root / "objects" / hashlib.sha256(key.encode()).hexdigest()
        self._written.add(path)
        return path

    def register(self, key: str, media: MediaType | None) -> StoredObject:
        """Record a file the engine wrote at ``path_for(key)``."""
        path = self.path_for(key)
        stored = StoredObject(key, path, path.stat().st_size, media)
        self._objects[key] = stored
        return stored

    async def receive(self, key: str, chunks: AsyncIterator[bytes], length: int) -> StoredObject:
        """Stream a PUT body to disk; nothing is stored unless exactly ``length`` bytes came."""
        partial = _PartialFile(self._root / "partial" / uuid.uuid4().hex)
        received, head, block = 0, b"", bytearray()
        try:
            async for chunk in chunks:
                received += len(chunk)
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                block += chunk
                if len(block) >= _WRITE_BLOCK:
                    await self._run(partial.write, bytes(block))
                    block.clear()
                if received > length:
                    break
            if received != length:
                raise S3Error(
                    400,
                    "IncompleteBody",
                    f"You did not provide the number of bytes specified by the Content-Length "
                    f"HTTP header ({received} of {length}).",
                )
            await self._run(partial.write, bytes(block))
            digest = await self._run(partial.commit, self.path_for(key))
        except BaseException:
            partial.discard()  # quick, and must happen even when cancelled
            raise
        stored = StoredObject(key, self.path_for(key), received, sniff(head), sha256=digest)
        self._objects[key] = stored
        return stored

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def reset(self) -> None:
        """Forget every object and delete the files this storage wrote, and only those."""
        self._objects.clear()
        written, self._written = self._written, set()
        for path in written:
            path.unlink(missing_ok=True)
        self._make_dirs()
