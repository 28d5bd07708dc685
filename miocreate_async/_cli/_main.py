"""The ``miocreate`` console script: every operation, batches with progress bars, the emulator.

The command lives behind the ``cli`` extra (rich draws its progress bars and tables); without it,
the command says which extra to install. ``demo`` and ``emulator`` need the ``emulator`` extra
instead. rich is imported only by the CLI, never by the library.

Exit status: 0 success; 1 the service, a task or a transfer failed (or, for ``batch``, any job
did); 2 a usage or input error (bad arguments, a missing file, an output that exists without
``--overwrite``, missing credentials); 130 interrupted.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import traceback
from collections.abc import Sequence

from .._errors import ConfigurationError, InvalidInputError, SwapInterrupted
from ._args import Options
from ._common import CliError, error_json, print_json
from ._console import show_log
from ._emulator import EXIT_INTERRUPTED, emulator_arguments, run_emulator
from ._parser import UsageError, build_parser

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_PROG = "miocreate"
#: Commands that work without rich (the ``cli`` extra).
_PLAIN_COMMANDS = frozenset({"demo", "emulator", "worker"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    emulator_args = emulator_arguments(args)
    if emulator_args is not None:
        try:
            return run_emulator(emulator_args)
        except CliError as refused:
            return _fail(refused.message, refused.status)
    parser = build_parser(_PROG)
    try:
        options = Options(parser.parse_args(args))
    except UsageError as refused:
        if "--json" in args:
            return _fail_json(refused, str(refused), EXIT_USAGE)
        refused.parser.print_usage(sys.stderr)
        print(f"{refused.parser.prog}: error: {refused}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_:  # --help or --version
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    command = options.command()
    if command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if options.name not in _PLAIN_COMMANDS and importlib.util.find_spec("rich") is None:
        return _fail(
            "this command needs the 'cli' extra: pip install 'miocreate-async[cli]'", EXIT_FAILED
        )
    show_log(logging.DEBUG if options.verbose else None)
    try:
        return asyncio.run(command(options))
    except (KeyboardInterrupt, asyncio.CancelledError) as interruption:
        if options.json:
            _fail_json(interruption, "interrupted", EXIT_INTERRUPTED)
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as raised:  # one line (or one JSON document), unless --debug
        error = _leaf(raised)
        if options.debug:
            traceback.print_exception(type(raised), raised, raised.__traceback__)
        if options.json:
            _fail_json(error, _describe(error), _exit_code(error))
            if not isinstance(error, SwapInterrupted):
                return _exit_code(error)
        # A paid task not saved is said on stderr even under --json.
        return _fail(_describe(error), _exit_code(error))


def _fail(message: str, status: int) -> int:
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return status


def _fail_json(error: BaseException, message: str, status: int) -> int:
    """Under ``--json``, a refusal or a failure is a JSON document on stdout too."""
    print_json({"error": error_json(error, message)})
    return status


def _leaf(error: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups, as task groups raise them."""
    while True:
        inner = getattr(error, "exceptions", None)
        if not isinstance(inner, tuple) or not inner:
            return error
        error = inner[0]


def _describe(error: BaseException) -> str:
    if isinstance(error, CliError):
        return error.message
    if isinstance(error, FileExistsError):
        where = f": {error.filename}" if error.filename else ""
        return f"the output exists{where} (pass --overwrite to replace it)"
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.strerror}: {error.filename}"
    text = " ".join(str(error).split())
    # The library speaks Python; the command line's switch for it is --overwrite.
    text = text.replace("pass overwrite=True", "pass --overwrite")
    return text or type(error).__name__


def _exit_code(error: BaseException) -> int:
    if isinstance(error, CliError):
        return error.status
    if isinstance(error, SwapInterrupted):
        return EXIT_INTERRUPTED
    if isinstance(error, (InvalidInputError, ConfigurationError, FileExistsError)):
        return EXIT_USAGE
    if isinstance(error, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return EXIT_USAGE
    return EXIT_FAILED
