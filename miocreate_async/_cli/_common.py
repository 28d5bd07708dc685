"""What the CLI's commands share: the client, inputs, output paths and JSON (no rich here)."""

from __future__ import annotations

import enum
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TypeAlias, cast

import attrs

from .._client import MioCreate
from .._config import Environment
from .._models import ImageSwapResult, VideoSwapResult
from .._transfer._get import names_a_folder
from .._transfer._inputs import Key
from ._args import Options

__all__ = [
    "CliError",
    "Json",
    "Source",
    "SwapResult",
    "check_free",
    "default_output",
    "jsonable",
    "make_client",
    "name_of",
    "print_json",
    "relative",
    "source_of",
    "suffix_of",
    "taken",
]


#: An input given on the command line: a local file, or an uploaded key.
Source = Key | Path
SwapResult = ImageSwapResult | VideoSwapResult
#: What ``print_json`` writes.
Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None


class CliError(Exception):
    """A failure the CLI explains in one line, with the exit status to use; ``kind`` is its
    ``error.type`` under ``--json``."""

    def __init__(self, message: str, status: int = 2, kind: str = "UsageError") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


def error_json(error: BaseException, message: str) -> dict[str, Json]:
    """An error as ``--json`` shows it: ``{type, message, code, task_id}``."""
    code, task_id = getattr(error, "code", None), getattr(error, "task_id", None)
    return {
        "type": error.kind if isinstance(error, CliError) else type(error).__name__,
        "message": message,
        "code": code if isinstance(code, int) else None,
        "task_id": task_id if isinstance(task_id, int) else None,
    }


def make_client(options: Options) -> MioCreate:
    """A MioCreate from the global options; credentials and base URL default to the environment."""
    if not (options.token or Environment.read().has_credentials):
        raise CliError(
            "no credentials: set MIOCREATE_CLIENT_ID and MIOCREATE_CLIENT_SECRET, or "
            "MIOCREATE_TOKEN, or pass --token (try `miocreate demo` for a run without any)",
            kind="ConfigurationError",
        )
    return MioCreate(token=options.token, base_url=options.base_url)


def source_of(text: str) -> Source:
    """A command-line input: ``key:<key>`` is an uploaded key, anything else a local file."""
    if text.startswith("key:"):
        return Key(text[len("key:") :])
    path = Path(text).expanduser()
    if not path.exists():
        raise CliError(f"no such file: {text}")
    if not path.is_file():
        raise CliError(f"not a file: {text}")
    return path


def name_of(source: Source) -> str:
    """A short name of an input, for messages and tables."""
    return source.name if isinstance(source, Path) else str(source).rsplit("/", 1)[-1]


def default_output(source: Source, folder: Path | None = None) -> Path:
    """Where a result of ``source`` goes by default, without its extension (the result's own
    is added once known): ``<folder or cwd>/<stem>-swapped``."""
    stem = Path(name_of(source)).stem or "result"
    return (folder or Path.cwd()) / f"{stem}-swapped"


def taken(stem_path: Path) -> Path | None:
    """An existing file (or symlink, even a dangling one) named ``stem_path`` with any
    extension, if there is one."""
    if not stem_path.parent.is_dir():
        return None
    for candidate in stem_path.parent.glob(f"{_glob_escape(stem_path.name)}.*"):
        if os.path.lexists(candidate) and not candidate.is_dir():
            return candidate
    return None


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


#: The longest file name most file systems take, in bytes.
NAME_MAX = 255


def check_free(path: Path, overwrite: bool) -> None:
    """Refuse early (before any credit is spent) an output that cannot be written: an existing
    file or symlink (a dangling one too: writing would follow it), or a name too long."""
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise CliError(f"the output name is too long for the file system: {path.name[:40]}...")
    if not overwrite and os.path.lexists(path) and not path.is_dir():
        raise CliError(
            f"the output exists: {path} (pass --overwrite to replace it)", kind="OutputExistsError"
        )


def output_folder(output: str) -> Path | None:
    """The folder ``-o`` names (by the library's rule for ``download``), or None for a file.
    Only its last level may be missing: it is created later."""
    if not names_a_folder(output):
        return None
    path = Path(output).expanduser()
    check_parent(path / "-")
    return path


def check_parent(path: Path) -> None:
    """Refuse, before anything is spent, a file whose folder cannot be made: only the last
    missing folder is ever created (a typo in ``-o`` never makes a tree at the root)."""
    folder = path.parent
    if not folder.is_dir() and not folder.parent.is_dir():
        raise CliError(
            f"the folder {folder.parent} does not exist (only the last folder of -o is created)"
        )


def suffix_of(result: SwapResult) -> str:
    """The extension of a result, from its storage key."""
    return Path(str(result.merge_key)).suffix or ".bin"


def jsonable(value: object) -> Json:
    """Results, faces and task infos as plain JSON values (local-only helpers left out)."""
    if attrs.has(type(value)):
        fields = attrs.fields(cast("type[attrs.AttrsInstance]", type(value)))
        return {
            field.alias if field.name.startswith("_") else field.name: jsonable(
                getattr(value, field.name)
            )
            for field in fields
            if field.eq  # the bound downloader is not data
        }
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def print_json(document: object) -> None:
    json.dump(jsonable(document), sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def relative(path: Path) -> str:
    """``path`` as the user would type it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
