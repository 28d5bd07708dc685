"""The argument parser of ``miocreate``: global options, one subcommand per job.

Global options are accepted before or after the subcommand (``miocreate --json swap ...`` and
``miocreate swap ... --json`` are the same).
"""

from __future__ import annotations

import argparse

from ._version import __version__

__all__ = ["build_parser", "emulator_arguments"]

_EPILOG = """\
credentials come from MIOCREATE_CLIENT_ID and MIOCREATE_CLIENT_SECRET (or MIOCREATE_TOKEN, or
--token); the service from MIOCREATE_BASE_URL (or --base-url). Point them at `miocreate emulator`
to try everything locally.

exit status: 0 success; 1 the service, a task or a transfer failed (batch: any job failed);
2 usage or input error; 130 interrupted."""

#: Global options taking a value, to find the subcommand without parsing (see emulator_arguments).
_VALUED_GLOBALS = frozenset({"--base-url", "--token"})


def _add_globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
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
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print one JSON document on stdout, no progress bars",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        default=default(False),
        help="replace output files that exist (never done otherwise)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks and the library's debug log",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def build_parser(prog: str = "miocreate") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Face swaps with the MioCreate API, from the command line.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_globals(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        _add_globals(sub, top=False)
        return sub

    def timeout(sub: argparse.ArgumentParser, default: float) -> None:
        sub.add_argument(
            "--timeout",
            type=_positive_float,
            default=default,
            metavar="SECONDS",
            help=f"give up waiting for a task after this long (default: {default:g})",
        )

    source_help = "a local file, or key:<uploaded key>"

    for name, media, what, wait in (
        ("swap", "image", "an image", 600),
        ("swap-video", "video", "a video", 1800),
    ):
        swap = command(name, f"swap a face into {what} and download the result")
        swap.add_argument(media, help=f"the {media} to edit: {source_help}")
        swap.add_argument("--face", required=True, help=f"the new face: {source_help}")
        swap.add_argument("--hd", action="store_true", help="high-quality swap")
        swap.add_argument(
            "-o",
            "--output",
            metavar="PATH",
            help=f"file or existing folder for the result (default: <{media}>-swapped.<ext> here)",
        )
        timeout(swap, wait)

    faces = command("faces", "list the faces of an image or video (for swap-faces)")
    faces.add_argument("media", help=f"the image or video: {source_help}")
    timeout(faces, 600)

    multi = command(
        "swap-faces",
        "swap several faces of an image or video: --face N=new.jpg (N as listed by `faces`)",
    )
    multi.add_argument("media", help=f"the image or video the faces are in: {source_help}")
    multi.add_argument(
        "--face",
        dest="faces",
        action="append",
        required=True,
        metavar="WHICH=NEW",
        help="WHICH is a face number (1, 2...) or a face key from `faces`; NEW the new face "
        "(a file or key:<uploaded key>); repeat for each face",
    )
    multi.add_argument(
        "--detection",
        metavar="TASK_ID",
        help="the task id printed by `faces` (default: detect the faces now)",
    )
    multi.add_argument("--hd", action="store_true", help="high-quality swap")
    multi.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="file or existing folder for the result (default: <media>-swapped.<ext> here)",
    )
    timeout(multi, 1800)

    task = command("task", "show a task's status and result")
    task.add_argument("task_id", metavar="TASK_ID")
    task.add_argument("--wait", action="store_true", help="wait until the task ends")
    task.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="download the result (once succeeded) to this file or existing folder",
    )
    timeout(task, 600)

    batch = command(
        "batch",
        "swap many: a folder of images/videos with one --face, or a CSV of jobs image,face[,hd]",
    )
    batch.add_argument(
        "source",
        metavar="FOLDER_OR_CSV",
        help="a folder (every image and video in it, with --face) or a CSV file with rows "
        "image,face[,hd] (paths relative to the CSV; a header row is allowed)",
    )
    batch.add_argument("--face", help="the new face for every file of a folder")
    batch.add_argument("--hd", action="store_true", help="high-quality swaps (CSV: the default)")
    batch.add_argument(
        "-o",
        "--output",
        metavar="FOLDER",
        default="swapped",
        help="folder for the results, created if needed (default: ./swapped)",
    )
    batch.add_argument(
        "-j",
        "--concurrency",
        type=_positive_int,
        default=8,
        metavar="N",
        help="jobs in flight at once (default: 8)",
    )
    timeout(batch, 1800)

    # Listed for --help; `miocreate emulator ...` is handed to the emulator before parsing.
    command(
        "emulator",
        "run the local emulator (the same flags as python -m "
        "miocreate_async.emulator; see miocreate emulator --help)",
    )

    demo = command("demo", "swap a sample face into a sample photo on the embedded emulator")
    demo.add_argument(
        "-o",
        "--output",
        metavar="FOLDER",
        default="miocreate-demo-output",
        help="folder for the sample inputs and the result (default: ./miocreate-demo-output)",
    )
    return parser


def emulator_arguments(args: list[str]) -> list[str] | None:
    """The arguments after ``emulator`` when that is the subcommand, else None.

    The emulator has its own parser; every flag after ``emulator`` is its own.
    """
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return args[index + 1 :] if arg == "emulator" else None
        index += 2 if arg in _VALUED_GLOBALS else 1
    return None
