"""pytest fixtures for users' tests: a running emulator and a client bound to it.

Installed with the package (a ``pytest11`` entry point), so tests just ask for them::

    def test_sync(miocreate_emulator):          # a running emulator (its own thread and loop)
        assert miocreate_emulator.url.startswith("http://")

    @pytest.mark.anyio
    async def test_swap(miocreate_client):      # a MioCreate bound to it, closed afterwards
        ...

``miocreate_client`` is an async fixture: use it from async tests run by anyio's pytest plugin
(``@pytest.mark.anyio``) or pytest-asyncio. Settings of the emulator come from a marker:
``@pytest.mark.miocreate_emulator(latency=0.2, fail_rate=0.1, seed=3)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from . import MioCreate
    from .emulator import Emulator

__all__ = ["miocreate_client", "miocreate_emulator"]

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
    from .emulator import Emulator

    marker = request.node.get_closest_marker("miocreate_emulator")
    options = {**DEFAULT_OPTIONS, **(marker.kwargs if marker else {})}
    with Emulator(**options).run_in_thread() as emulator:
        yield emulator


@pytest.fixture
async def miocreate_client(miocreate_emulator: Emulator) -> AsyncIterator[MioCreate]:
    """A ``MioCreate`` client bound to ``miocreate_emulator``, closed after the test."""
    client = miocreate_emulator.client()
    try:
        yield client
    finally:
        await client.aclose()
