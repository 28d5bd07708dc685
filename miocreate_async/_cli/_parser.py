"""The argument parser of ``miocreate``: the global options, then one subcommand per command
module, each registering its own parser (adding a command touches one module and this list).

Global options are accepted before or after the subcommand (``miocreate --json swap ...`` and
``miocreate swap ... --json`` are the same).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from .._version import __version__
from . import _batch, _demo, _doctor, _emulator, _faces, _journal, _swap, _task, _worker
from ._args import add_globals

__all__ = ["UsageError", "build_parser"]

# Within 80 columns, as argparse wraps the rest of the help (and the CLI page renders it).
_EPILOG = """\
credentials come from MIOCREATE_CLIENT_ID and MIOCREATE_CLIENT_SECRET (or
MIOCREATE_TOKEN, or --token); the service from MIOCREATE_BASE_URL (or
--base-url). Point them at `miocreate emulator` to try everything locally.

exit status: 0 success; 1 the service, a task or a transfer failed (batch: any
job failed); 2 usage or input error; 130 interrupted."""

#: In the order --help lists them.
_COMMAND_MODULES = (
    _swap,
    _faces,
    _task,
    _batch,
    _journal,
    _worker,
    _doctor,
    _emulator,
    _demo,
)


class UsageError(Exception):
    """Bad arguments: ``main`` prints them as argparse would, or as JSON under ``--json``."""

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    """Raises usage errors instead of printing them and exiting (subcommands' parsers too)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)


def build_parser(prog: str = "miocreate") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Face swaps with the MioCreate API, from the command line.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_globals(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(commands)
    return parser
