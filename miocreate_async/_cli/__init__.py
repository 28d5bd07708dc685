"""The ``miocreate`` console script (``miocreate_async._cli:main``); the library never imports it.

One module per command (``_swap``, ``_faces``, ``_task``, ``_batch``, ``_demo``, ``_emulator``),
each registering its own parser; ``_main`` parses, runs the command and turns errors into one
line and an exit status.
"""

from ._emulator import EXIT_INTERRUPTED
from ._main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]
