"""What every command's parser shares, declared once: the global options, the argument types,
``--timeout``, ``--output``, ``--hd``; and ``Options``, the parsed arguments read with types."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

    #: The ``add_subparsers()`` object each command module registers its parser with.
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "SOURCE_HELP",
    "Command",
    "Options",
    "add_command",
    "add_globals",
    "add_hd",
    "add_output",
    "add_timeout",
    "positive_int",
]

#: How each input of a command is given.
SOURCE_HELP = "a local file, or key:<uploaded key>"


class Options:
    """The parsed arguments, read through typed accessors (argparse's values are untyped)."""

    def __init__(self, namespace: argparse.Namespace) -> None:
        self._values = vars(namespace)

    def text(self, name: str) -> str:
        value = self._values[name]
        assert isinstance(value, str), name
        return value

    def optional_text(self, name: str) -> str | None:
        value = self._values.get(name)
        assert value is None or isinstance(value, str), name
        return value

    def texts(self, name: str) -> list[str]:
        value = self._values[name]
        assert isinstance(value, list), name
        return [str(item) for item in value]

    def flag(self, name: str) -> bool:
        return bool(self._values.get(name, False))

    def number(self, name: str) -> float:
        value = self._values[name]
        assert isinstance(value, (int, float)), name
        return float(value)

    def optional_number(self, name: str) -> float | None:
        value = self._values.get(name)
        assert value is None or isinstance(value, (int, float)), name
        return None if value is None else float(value)

    def count(self, name: str) -> int:
        value = self._values[name]
        assert isinstance(value, int), name
        return value

    def command(self) -> Command | None:
        """The subcommand's coroutine, set by its ``register``; None when none was given."""
        run = self._values.get("run")
        return run if callable(run) else None

    # The global options, accepted by every command.
    @property
    def json(self) -> bool:
        return self.flag("json")

    @property
    def overwrite(self) -> bool:
        return self.flag("overwrite")

    @property
    def debug(self) -> bool:
        return self.flag("debug")

    @property
    def verbose(self) -> bool:
        return self.flag("verbose") or self.debug

    @property
    def token(self) -> str | None:
        return self.optional_text("token")

    @property
    def base_url(self) -> str | None:
        return self.optional_text("base_url")

    @property
    def name(self) -> str | None:
        return self.optional_text("command")


#: A command: the parsed options in, the exit status out.
Command = Callable[[Options], Coroutine[object, object, int]]


def add_globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The global options; below the top level their defaults are suppressed, so that a value
    given before the subcommand is not reset by the subcommand's parser."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default(None),
        help="API base URL (default: $MIOCREATE_BASE_URL, else the MioCreate service)",
    )
    group.add_argument(
        "--token",
        metavar="TOKEN",
        default=default(None),
        help="an access token (default: $MIOCREATE_TOKEN, else exchange "
        "$MIOCREATE_CLIENT_ID/$MIOCREATE_CLIENT_SECRET)",
    )
    for flag, help_ in (
        ("--json", "print one JSON document on stdout, no progress bars"),
        ("--overwrite", "replace output files that exist (never done otherwise)"),
        ("--verbose", "log each request, each retry and its reason (redacted); print result URLs"),
        ("--debug", "as --verbose, and show tracebacks"),
    ):
        group.add_argument(flag, action="store_true", default=default(False), help=help_)


def add_command(
    commands: Subcommands,
    name: str,
    help_: str,
    run: Command | None = None,
) -> argparse.ArgumentParser:
    """A subcommand with the global options, running ``run``."""
    sub = commands.add_parser(name, help=help_, description=help_)
    add_globals(sub, top=False)
    if run is not None:
        sub.set_defaults(run=run)
    return sub


def positive_int(text: str) -> int:
    return int(_number(text, int, "must be at least 1"))


def positive_float(text: str) -> float:
    return _number(text, float, "must be positive")


def _number(text: str, kind: type[int] | type[float], rule: str) -> float:
    """``text`` as a number above zero, else the one-line usage error argparse prints."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{rule}: {text}")
    return value


def add_timeout(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=default,
        metavar="SECONDS",
        help=f"give up waiting for a task after this long (default: {default:g})",
    )


def add_hd(parser: argparse.ArgumentParser, help_: str = "high-quality swap") -> None:
    parser.add_argument("--hd", action="store_true", help=help_)


def add_output(
    parser: argparse.ArgumentParser,
    help_: str,
    *,
    metavar: str = "PATH",
    default: str | None = None,
) -> None:
    parser.add_argument("-o", "--output", metavar=metavar, default=default, help=help_)
