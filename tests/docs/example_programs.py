"""The example programs of examples/, imported by the tests that use them: aiogram, discord.py
and FastAPI take seconds to import, which every test process would otherwise pay at collection
(four times over with ``-n 4``)."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


def example(name: str) -> ModuleType:
    """The example program ``examples/<name>.py`` as a module (imported once)."""
    with warnings.catch_warnings():  # discord.py imports audioop, deprecated in Python 3.11+
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(name)
