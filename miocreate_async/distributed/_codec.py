"""What crosses machines, as JSON: a job's inputs, its identity, a result, an error.

A job's inputs must be readable by any worker: a path on a shared file system, an uploaded
``Key``, or an http(s) URL. Bytes, file objects and streams live in one process only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .._batch import SwapJob
from .._errors import InvalidInputError, MioCreateError
from .._journal import ErrorInfo, InputRef, describe_input, job_identity
from .._journal._tracker import _restored_error as restored_error
from .._telemetry import carrier
from .._transfer._inputs import Key
from ._errors import TaskBudgetError

__all__ = [
    "decode_error",
    "describe",
    "encode_job",
    "input_of",
    "is_url",
]

Spec = dict[str, Any]


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def describe(value: object, role: str) -> InputRef:
    """An input as the journal knows it; InvalidInputError when other machines cannot read it."""
    if isinstance(value, Key):
        return describe_input(value, str(value))
    if isinstance(value, str) and is_url(value):
        return describe_input(value, None)  # by its unsigned URL (see _ref for the spec)
    if isinstance(value, (str, os.PathLike)):
        return describe_input(value, None)
    raise InvalidInputError(
        f"a distributed job's {role} must be a path on a shared file system, a Key or an "
        f"http(s) URL, not {type(value).__name__}: other machines cannot read it"
    )


def encode_job(job: SwapJob) -> tuple[str, str, str, Spec]:
    """The job's id, fingerprint, label and inputs as JSON-able data (what a worker reads)."""
    image, face = describe(job.image, "image"), describe(job.face, "face")
    explicit = getattr(job, "id", None)
    own_id = None if explicit is None else str(explicit)
    job_id, fingerprint = job_identity(image, face, hd=job.hd, kind=job.kind, explicit_id=own_id)
    spec = {
        "image": {"ref": _ref(job.image, image), "fingerprint": image.fingerprint},
        "face": {"ref": _ref(job.face, face), "fingerprint": face.fingerprint},
        "hd": job.hd,
        "kind": job.kind,
    }
    trace = carrier()  # the submitter's trace: the worker's job span continues it
    if trace:
        spec["trace"] = trace
    return job_id, fingerprint, f"{image.label} + {face.label}", spec


def _ref(value: object, described: InputRef) -> str | None:
    """What a worker reads: a URL as given, signature included (Redis then holds a secret:
    the docs say so), since the journal's identity has it removed."""
    if isinstance(value, str) and not isinstance(value, Key) and is_url(value):
        return f"url:{value}"
    return described.identity


def input_of(spec: Mapping[str, Any]) -> str:
    """The input a spec names: a Key, a URL or a path (a string)."""
    scheme, _, value = str(spec["ref"]).partition(":")
    return Key(value) if scheme == "key" else value


def decode_error(info: ErrorInfo, task_id: int | None) -> MioCreateError:
    """The recorded error as its own type (the journal's rule, plus this edge's own error)."""
    if info.type == TaskBudgetError.__name__:
        return TaskBudgetError(info.message, code=info.code, task_id=task_id)
    return restored_error(info, task_id)
