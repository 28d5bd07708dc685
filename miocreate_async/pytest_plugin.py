"""pytest fixtures for users' tests: a running emulator, a client bound to it, sample files.

Installed with the package (a ``pytest11`` entry point), so tests just ask for them::

    def test_sync(miocreate_emulator):          # a running emulator (its own thread and loop)
        assert miocreate_emulator.url.startswith("http://")

    @pytest.mark.asyncio                        # pytest-asyncio, strict (default) or auto mode
    async def test_swap(miocreate_client, miocreate_sample_photo, miocreate_sample_face):
        result = await miocreate_client.swap_image(miocreate_sample_photo, miocreate_sample_face)

    @pytest.mark.anyio                          # or anyio's pytest plugin
    async def test_swap_too(miocreate_client): ...

``miocreate_client`` is made and closed in the test's own event loop, whichever plugin runs the
test. ``miocreate_sample_photo``, ``miocreate_sample_face`` and ``miocreate_sample_video`` are
files in the test's ``tmp_path`` (they need no extra). The emulator and the client need the
``emulator`` extra (``pip install 'miocreate-async[emulator]'``): without it they fail, saying
so. Settings of the emulator come from a marker:
``@pytest.mark.miocreate_emulator(latency=0.2, fail_rate=0.1, seed=3)``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from . import MioCreate
    from .emulator import Emulator

__all__ = [
    "miocreate_client",
    "miocreate_emulator",
    "miocreate_sample_face",
    "miocreate_sample_photo",
    "miocreate_sample_video",
]

#: Fast defaults for tests: tasks end in 50 ms, faults replay with the same seed.
DEFAULT_OPTIONS: dict[str, Any] = {"latency": 0.05, "seed": 0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "miocreate_emulator(**options): settings of the miocreate_emulator fixture "
        "(latency, seed, fail_rate, credits...)",
    )


@pytest.fixture
def miocreate_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A running MioCreate emulator, served from a background thread with its own loop."""
    from .emulator import Emulator, samples

    if not samples.pillow_available():
        # Its results are pictures: a clear failure, not a skip that lets a suite pass empty.
        pytest.fail(
            "the miocreate_emulator and miocreate_client fixtures need the emulator's extra "
            "(Pillow draws its results): pip install 'miocreate-async[emulator]'",
            pytrace=False,
        )

    marker = request.node.get_closest_marker("miocreate_emulator")
    options = {**DEFAULT_OPTIONS, **(marker.kwargs if marker else {})}
    with Emulator(**options).run_in_thread() as emulator:
        yield emulator


@pytest.fixture
def miocreate_client(request: pytest.FixtureRequest) -> MioCreate:
    """A ``MioCreate`` client bound to ``miocreate_emulator``, closed after the test.

    It is made in the loop that runs the test: pytest-asyncio's for ``@pytest.mark.asyncio``
    tests (strict mode wants its own fixture decorator), anyio's otherwise.
    """
    asyncio_test = request.node.get_closest_marker("asyncio") is not None
    use_asyncio = asyncio_test and "_miocreate_client_asyncio" in _ASYNC_FIXTURES
    name = "_miocreate_client_asyncio" if use_asyncio else "_miocreate_client_anyio"
    return cast("MioCreate", request.getfixturevalue(name))


async def _client(emulator: Emulator) -> AsyncIterator[MioCreate]:
    client = emulator.client()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def _miocreate_client_anyio(miocreate_emulator: Emulator) -> AsyncIterator[MioCreate]:
    async for client in _client(miocreate_emulator):
        yield client


_ASYNC_FIXTURES = {"_miocreate_client_anyio"}

if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def _miocreate_client_asyncio(
        miocreate_emulator: Emulator,
    ) -> AsyncIterator[MioCreate]:
        async for client in _client(miocreate_emulator):
            yield client

    _ASYNC_FIXTURES.add("_miocreate_client_asyncio")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def miocreate_sample_photo(tmp_path: Path) -> Path:
    """A photo with one face (``photo.jpg``, 640x480; ``photo.png`` without Pillow)."""
    return _sample(tmp_path, "photo")


@pytest.fixture
def miocreate_sample_face(tmp_path: Path) -> Path:
    """A face to swap in (``face.png``)."""
    return _sample(tmp_path, "face")


@pytest.fixture
def miocreate_sample_video(tmp_path: Path) -> Path:
    """A short MP4 video (``clip.mp4``)."""
    return _sample(tmp_path, "video")


def _sample(folder: Path, which: str) -> Path:
    """A cartoon sample of the emulator, named by its real format (none needs an extra)."""
    from .emulator import samples

    data: bytes = getattr(samples, which)(real=False)
    stem = "clip" if which == "video" else which
    return _write(folder / f"{stem}{_extension(data)}", data)


def _extension(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data[4:8] == b"ftyp":
        return ".mp4"
    return ".jpg"
