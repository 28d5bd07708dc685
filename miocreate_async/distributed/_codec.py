"""What crosses machines, as JSON: a job's inputs, a result, an error.

A job's inputs must be readable by any worker: a path on a shared file system, an uploaded
``Key``, or an http(s) URL. Bytes, file objects and streams live in one process only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, cast

from .. import _errors
from .._batch import SwapJob, SwapResult
from .._client import Key
from .._converter import structure_result, unstructure
from .._errors import InvalidInputError, MioCreateError
from .._operations import TaskKind
from ._errors import TaskBudgetError

__all__ = [
    "decode_error",
    "decode_result",
    "encode_error",
    "encode_job",
    "encode_result",
    "is_url",
    "job_identity",
]

Spec = dict[str, Any]

_ERROR_TYPES: dict[str, type[MioCreateError]] = {
    cls.__name__: cls
    for cls in [*(getattr(_errors, name) for name in _errors.__all__), TaskBudgetError]
    if isinstance(cls, type) and issubclass(cls, MioCreateError)
}


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _input(value: object, role: str) -> Spec:
    if isinstance(value, Key):
        return {"key": str(value)}
    if isinstance(value, str) and is_url(value):
        return {"url": value}
    if isinstance(value, (str, os.PathLike)):
        path = Path(value).absolute()
        try:
            stat = path.stat()
        except OSError:
            # The driver may not see the shared file system; the worker checks it.
            return {"path": str(path)}
        return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    raise InvalidInputError(
        f"a distributed job's {role} must be a path on a shared file system, a Key or an "
        f"http(s) URL, not {type(value).__name__}: other machines cannot read it"
    )


def encode_job(job: SwapJob) -> Spec:
    """The job's inputs as JSON-able data; InvalidInputError when another machine cannot read
    one of them."""
    return {
        "image": _input(job.image, "image"),
        "face": _input(job.face, "face"),
        "hd": job.hd,
        "kind": job.kind,
    }


def job_identity(job: SwapJob, spec: Spec) -> str:
    """The job's id: its own ``id`` if it has one, else a hash of its inputs (paths with size
    and modification time), so the same jobs given again are the same records."""
    own = getattr(job, "id", None)
    if own is not None:
        return str(own)
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def encode_result(result: SwapResult, kind: TaskKind) -> str:
    return json.dumps({"kind": kind.value, "data": unstructure(result)})


def decode_result(text: str) -> SwapResult:
    payload = json.loads(text)
    return cast(SwapResult, structure_result(payload["data"], TaskKind(payload["kind"])))


def encode_error(error: MioCreateError) -> str:
    return json.dumps(
        {
            "type": type(error).__name__,
            "message": error.message,
            "code": error.code,
            "operation": error.operation,
            "http_status": error.http_status,
            "task_id": error.task_id,
        }
    )


def decode_error(text: str) -> MioCreateError:
    payload = json.loads(text)
    cls = _ERROR_TYPES.get(payload["type"], MioCreateError)
    return cls(
        payload["message"],
        code=payload["code"],
        operation=payload["operation"],
        http_status=payload["http_status"],
        task_id=payload["task_id"],
    )
