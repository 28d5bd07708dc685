"""``miocreate emulator ...``: ``python -m miocreate_async.emulator ...`` under the one command.

The emulator has its own parser: every argument after ``emulator`` is handed to it as is, before
``miocreate``'s own parser runs (see ``emulator_arguments``).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from ._args import add_command

if TYPE_CHECKING:
    from ._args import Subcommands

__all__ = ["EXIT_INTERRUPTED", "emulator_arguments", "register", "run_emulator"]

EXIT_INTERRUPTED = 130
#: Global options taking a value, to find the subcommand without parsing.
_VALUED_GLOBALS = frozenset({"--base-url", "--token"})


def register(commands: Subcommands) -> None:
    # Listed for --help only: `miocreate emulator ...` never reaches the parser.
    add_command(
        commands,
        "emulator",
        "run the local emulator (the same flags as python -m "
        "miocreate_async.emulator; see miocreate emulator --help)",
    )


def emulator_arguments(args: list[str]) -> list[str] | None:
    """The arguments after ``emulator`` when that is the subcommand, else None."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return args[index + 1 :] if arg == "emulator" else None
        index += 2 if arg in _VALUED_GLOBALS else 1
    return None


def run_emulator(args: list[str]) -> int:
    """Run the emulator until interrupted; returns the exit status."""
    from ._common import CliError

    if importlib.util.find_spec("PIL") is None:
        raise CliError(
            "the emulator needs the 'emulator' extra: pip install 'miocreate-async[emulator]'", 1
        )
    from ..emulator.__main__ import main as emulator_main

    try:
        status = emulator_main(args, prog="miocreate emulator")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return status if isinstance(status, int) else 0
