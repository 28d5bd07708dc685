"""`import miocreate_async` loads only what a first call needs: the heavy or optional parts
(the journal, the distributed edge, the CLI, the emulator, their third-party dependencies)
load when they are first used, so importing the library stays cheap (issue 17)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Loaded only on first use, never by ``import miocreate_async``.
LAZY_PACKAGES = (
    "miocreate_async._journal",
    "miocreate_async.distributed",
    "miocreate_async._cli",
    "miocreate_async.emulator",
    "miocreate_async.pytest_plugin",
    # The request and reply bodies, the converter, the transfer code: each call's first use.
    "miocreate_async._wire",
    "miocreate_async._converter",
    "miocreate_async._transfer",
    "cattrs",
    "sqlite3",
    "taskiq",
    "taskiq_redis",
    "redis",
)


def _loaded_after(statement: str) -> list[str]:
    """Modules in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    probe = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def _lazy(loaded: list[str]) -> list[str]:
    return [
        name
        for name in loaded
        if any(name == lazy or name.startswith(lazy + ".") for lazy in LAZY_PACKAGES)
    ]


@pytest.mark.processes
def test_import_loads_none_of_the_lazy_parts() -> None:
    loaded = _loaded_after("import miocreate_async")
    assert "miocreate_async" in loaded
    assert _lazy(loaded) == []
