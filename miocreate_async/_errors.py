"""Every error the library raises, rooted at one class.

::

    MioCreateError
    ├── ConfigurationError          missing credentials or a bad setting
    ├── ClientClosedError           the client was closed (also a RuntimeError)
    ├── InvalidInputError           bad input, caught before any credit is spent (also ValueError)
    │   ├── SourceNotFoundError     the file does not exist or cannot be read
    │   ├── EmptySourceError        the file is empty
    │   ├── SourceTooSlowError      a URL input sent its bytes too slowly
    │   ├── ResultTooLargeError     result.read() of more than its max_bytes
    │   ├── BadRequestError         400  (also an APIError)
    │   ├── KeyNotFoundError        702  (also an APIError)
    │   ├── UnsupportedFormatError  703  (also an APIError; raised locally too)
    │   └── FileTooLargeError       704  (also an APIError; raised locally too)
    ├── APIError                    the service answered with an error code
    │   ├── BadRequestError         400
    │   ├── AuthenticationError     401
    │   ├── ServerError             500
    │   ├── TaskExceptionError      601
    │   ├── NoFaceDetectedError     602
    │   ├── MultipleFacesError      603
    │   ├── ContentPolicyError      604
    │   │   └── TargetPolicyError   605
    │   ├── FileError               701
    │   ├── KeyNotFoundError        702
    │   ├── UnsupportedFormatError  703
    │   ├── FileTooLargeError       704
    │   ├── InsufficientCreditsError 801
    │   └── RequestQuotaError       802
    ├── HTTPStatusError             an error status without the API's envelope (a proxy's 502)
    ├── ProtocolError               a reply that is not what the API documents
    ├── TransportError              the connection failed
    │   └── ConnectError            ...before the request was sent
    │       └── ServiceUnreachableError  a batch gave up: the service is down
    ├── MioCreateTimeoutError       a deadline passed (also the builtin TimeoutError)
    │   └── TaskTimeoutError        wait() gave up; the task itself may still finish
    ├── SubmissionUncertainError    a task-creating request may have reached the server
    ├── SwapInterrupted             a swap was interrupted after its task was created
    ├── NotSentError                not sent: its send_by moment had passed (nothing reached it)
    ├── TaskBudgetError             not sent: a batch's max_tasks budget is used up
    │   └── AllowanceExceededError  not sent: a key's allowance (Fairness) is used up
    ├── TaskFailedError             the task ended in failure; with a documented code, the
    │                               error is also that code's class (602: NoFaceDetectedError)
    └── StorageError                presigned storage refused a transfer
        └── UrlExpiredError         the signed URL has expired

Every error carries ``message`` (the server's, where there is one), ``code``, ``operation`` (the
method the user called: ``swap_image``, ``wait``...), ``http_status``, ``task_id``, ``job_id``
(a batch job's) and ``request_id`` (the service's id of the reply) where they are known.
Messages never contain secrets.
"""

from __future__ import annotations

import builtins
import contextvars
from typing import cast

__all__ = [
    "CALLED",
    "APIError",
    "AllowanceExceededError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "ConnectError",
    "ContentPolicyError",
    "EmptySourceError",
    "FileError",
    "FileTooLargeError",
    "HTTPStatusError",
    "InsufficientCreditsError",
    "InvalidInputError",
    "KeyNotFoundError",
    "MioCreateError",
    "MioCreateTimeoutError",
    "MultipleFacesError",
    "NoFaceDetectedError",
    "NotSentError",
    "ProtocolError",
    "RequestQuotaError",
    "ResultTooLargeError",
    "ServerError",
    "ServiceUnreachableError",
    "SourceNotFoundError",
    "SourceTooSlowError",
    "StorageError",
    "SubmissionUncertainError",
    "SwapInterrupted",
    "TargetPolicyError",
    "TaskBudgetError",
    "TaskExceptionError",
    "TaskFailedError",
    "TaskTimeoutError",
    "TransportError",
    "UnsupportedFormatError",
    "UrlExpiredError",
    "error_for_code",
    "task_failed_error",
]


#: The public method the user called, while it runs (``swap_image``, ``swap_many``...): errors
#: raised inside are named after it, not after the poll or upload inside it.
CALLED: contextvars.ContextVar[str | None] = contextvars.ContextVar("miocreate_call", default=None)


class MioCreateError(Exception):
    """Base of every error raised by miocreate_async."""

    #: The documented API code this class stands for, if any.
    default_code: int | None = None
    #: Seconds the server asked to wait before trying again (``Retry-After``), if it said.
    retry_after: float | None = None
    #: The service's id of the reply that failed (``x-request-id``, ``cf-ray``...), if one came:
    #: the id its support asks for.
    request_id: str | None = None
    #: The batch job's id (in its journal), for an error of a job.
    job_id: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        operation: str | None = None,
        http_status: int | None = None,
        task_id: int | None = None,
        storage_code: str | None = None,
    ) -> None:
        super().__init__(message)
        #: What went wrong, in words (the server's message where there is one).
        self.message: str = message
        #: The API's code (400 to 802), or a failed task's status code.
        self.code: int | None = code if code is not None else self.default_code
        #: The method the user called (``swap_image``, ``upload``...), or the API operation.
        self.operation: str | None = operation
        #: The HTTP status of the reply, where there was one.
        self.http_status: int | None = http_status
        #: The task the error is about (a task that failed, or one still running).
        self.task_id: int | None = task_id
        #: S3-style error code from presigned storage (``AccessDenied``, ``ExpiredRequest``...).
        self.storage_code: str | None = storage_code

    def _context(self) -> list[str]:
        parts: list[str] = []
        if self.operation:
            parts.append(f"operation={self.operation}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        if self.task_id is not None:
            parts.append(f"task_id={self.task_id}")
        if self.storage_code:
            parts.append(f"storage_code={self.storage_code}")
        if self.job_id is not None:
            parts.append(f"job_id={self.job_id}")
        if self.request_id is not None:
            parts.append(f"request_id={self.request_id}")
        return parts

    def __str__(self) -> str:
        context = self._context()
        return f"{self.message} ({', '.join(context)})" if context else self.message

    def __repr__(self) -> str:
        fields = ", ".join([repr(self.message), *self._context()])
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[MioCreateError], message: str, state: dict[str, object]) -> MioCreateError:
    error = cls(message)
    error.__dict__.update(state)
    return error


class ConfigurationError(MioCreateError):
    """The client cannot work as configured (no credentials, a bad base URL...)."""


class ClientClosedError(MioCreateError, RuntimeError):
    """The client was closed; make a new one."""


class InvalidInputError(MioCreateError, ValueError):
    """The input is unusable; raised before any request is sent where it can be known."""


class SourceNotFoundError(InvalidInputError):
    """The file to upload does not exist or cannot be read."""


class EmptySourceError(InvalidInputError):
    """The file to upload is empty."""


class ResultTooLargeError(InvalidInputError):
    """``result.read()`` of a result over its ``max_bytes``: use ``iter_bytes()`` or
    ``download()``, which keep memory flat."""


class SourceTooSlowError(InvalidInputError):
    """A URL input did not send its bytes within ``Config.source_timeout``, or more slowly than
    ``Config.source_min_rate``: not retried (a source that drips would hold an upload for days)."""


class APIError(MioCreateError):
    """The service answered with an error code (the envelope's ``code``)."""


class BadRequestError(APIError, InvalidInputError):
    """Code 400: the request's parameters were refused; nothing was done."""

    default_code: int | None = 400


class AuthenticationError(APIError):
    """Code 401: the token is invalid or expired, or the key pair was refused."""

    default_code: int | None = 401


class ServerError(APIError):
    """Code 500: a server exception; transient, retried for requests that change nothing."""

    default_code: int | None = 500


class TaskExceptionError(APIError):
    """Code 601: the task failed with an exception on the service's side."""

    default_code: int | None = 601


class NoFaceDetectedError(APIError):
    """Code 602: no face was found in the image, video or face picture."""

    default_code: int | None = 602


class MultipleFacesError(APIError):
    """Code 603: several faces make a single swap ambiguous; use ``swap_faces``."""

    default_code: int | None = 603


class ContentPolicyError(APIError):
    """Code 604: the file may not meet the provider's policy (NSFW, say)."""

    default_code: int | None = 604


class TargetPolicyError(ContentPolicyError):
    """Code 605: the target photo may not meet the provider's policy (a celebrity, say)."""

    default_code: int | None = 605


class FileError(APIError):
    """Code 701: the stored file is unusable (failed upload, undecodable image)."""

    default_code: int | None = 701


class KeyNotFoundError(APIError, InvalidInputError):
    """Code 702: no stored file has this key (uploads are not kept for ever)."""

    default_code: int | None = 702


class UnsupportedFormatError(APIError, InvalidInputError):
    """Code 703, or the same rule checked locally: JPG, PNG, WEBP, GIF, M4V, MP4, MOV, WEBM."""

    default_code: int | None = 703


class FileTooLargeError(APIError, InvalidInputError):
    """Code 704, or the same rule checked locally: at most 500 MB."""

    default_code: int | None = 704


class InsufficientCreditsError(APIError):
    """Code 801: the account has no credits left; nothing was created."""

    default_code: int | None = 801


class RequestQuotaError(APIError):
    """Code 802: the request quota is used up; nothing was done, so the call may be retried."""

    default_code: int | None = 802


class HTTPStatusError(MioCreateError):
    """An error HTTP status with no API envelope, typically a proxy's HTML page."""


class ProtocolError(MioCreateError):
    """A reply that does not match the documented protocol."""


class TransportError(MioCreateError):
    """The connection failed or broke."""


class ConnectError(TransportError):
    """No connection could be made: the request was never sent."""

    #: No retry can fix it (nothing listening at a base URL never reached, TLS to a plain-HTTP
    #: port, an unknown host): raised at once, its message saying what to change.
    permanent: bool = False


class ServiceUnreachableError(ConnectError):
    """A batch stopped: too many connection failures in a row, with no success between them.

    Nothing was sent for the job that gets it, so it can be submitted again once the service
    is back (``swap_many(..., unreachable_after=N)`` sets how many failures are too many).
    """


class MioCreateTimeoutError(MioCreateError, builtins.TimeoutError):
    """A deadline passed."""


class TaskTimeoutError(MioCreateTimeoutError):
    """``wait()`` reached its deadline; the task goes on and can be waited for again."""


class SubmissionUncertainError(MioCreateError):
    """A task-creating request may have reached the server, and no usable reply came back.

    It is never re-sent (that could pay twice). The task may exist, but the API cannot list
    tasks, so nothing can find it: sending the job again is a choice that risks paying twice
    (``swap_many(..., resubmit_uncertain=True)`` makes that choice for a batch).
    """

    @classmethod
    def of(cls, error: MioCreateError, operation: str) -> SubmissionUncertainError:
        """The doubt after ``error`` (raise it ``from error``)."""
        return cls(
            f"the request may have reached the server ({error.message}); not re-sent, so as "
            "not to pay twice. A task may exist, and the API cannot list tasks: sending the "
            "job again risks paying twice",
            operation=operation,
            http_status=error.http_status,
        )


class NotSentError(MioCreateError):
    """A request was not sent: the moment it had to go by (``send_by``) had passed. Nothing
    reached the service. (A distributed worker's creation when too little of its lease is
    left.)"""


class TaskBudgetError(MioCreateError):
    """Not submitted: the batch's ``max_tasks`` budget was used up (nothing was sent for this
    job; it stays to do: run the batch again with a larger budget)."""


class AllowanceExceededError(TaskBudgetError):
    """Not submitted: the job's key used up its allowance (``Fairness(allowance=...)``);
    ``key`` names it. Nothing was sent for this job."""

    #: The key whose allowance is used up.
    key: str | None = None


class SwapInterrupted(MioCreateError):
    """A single swap was interrupted (Ctrl-C, a cancellation) after its task was created: the
    task is paid for and may still finish; ``task_id`` names it. Collect it with
    ``await client.wait(task_id)`` or ``miocreate task TASK_ID --wait -o FILE``.

    The command line raises it. In the library a cancellation stays a cancellation (a task
    group or a timeout must still see it): ``swap_image`` and ``swap_video`` re-raise it with a
    ``SwapInterrupted`` as its ``__cause__`` (and a note that names the task), and log a
    warning.
    """

    @classmethod
    def of(cls, error: BaseException | None) -> SwapInterrupted | None:
        """The ``SwapInterrupted`` behind ``error`` (a cancellation, or the ``TimeoutError``
        of a timeout around it), or None."""
        seen: set[int] = set()
        while error is not None and id(error) not in seen:
            if isinstance(error, SwapInterrupted):
                return error
            seen.add(id(error))
            error = error.__cause__ or error.__context__
        return None


class TaskFailedError(MioCreateError):
    """The task ended in failure; ``task_id`` and ``code`` (its status code) say which."""


class StorageError(MioCreateError):
    """Presigned storage refused an upload or download; ``storage_code`` is its S3 code."""


class UrlExpiredError(StorageError):
    """The signed URL has expired (results are kept 7 days; upload URLs 30 minutes)."""


_BY_CODE: dict[int, type[APIError]] = {
    cls.default_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        ServerError,
        TaskExceptionError,
        NoFaceDetectedError,
        MultipleFacesError,
        ContentPolicyError,
        TargetPolicyError,
        FileError,
        KeyNotFoundError,
        UnsupportedFormatError,
        FileTooLargeError,
        InsufficientCreditsError,
        RequestQuotaError,
    )
    if cls.default_code is not None
}


def _task_failed_class(cls: type[APIError]) -> type[TaskFailedError]:
    """``cls`` and TaskFailedError at once, named like ``cls`` so users see its name."""
    combined = cast(
        "type[TaskFailedError]",
        type(cls.__name__, (cls, TaskFailedError), {"__doc__": cls.__doc__}),
    )
    # Pickled by reference under this private name (the distributed edge sends errors).
    combined.__qualname__ = f"_TaskFailed{cls.__name__}"
    combined.__module__ = __name__
    globals()[combined.__qualname__] = combined
    return combined


_TASK_FAILED_BY_CODE = {code: _task_failed_class(cls) for code, cls in _BY_CODE.items()}


def task_failed_error(
    code: int,
    message: str | None,
    *,
    operation: str | None = None,
    task_id: int | None = None,
    request_id: str | None = None,
) -> TaskFailedError:
    """The error of a task that ended in failure with status ``code``: a TaskFailedError that,
    for a documented code, is also that code's class (602: ``NoFaceDetectedError``);
    ``request_id`` is the service's id of the reply that said so."""
    cls = _TASK_FAILED_BY_CODE.get(code, TaskFailedError)
    error = cls(
        message or f"the task failed (status {code})",
        code=code,
        operation=operation,
        task_id=task_id,
    )
    error.request_id = request_id
    return error


def error_for_code(
    code: int,
    message: str,
    *,
    operation: str | None = None,
    http_status: int | None = None,
    task_id: int | None = None,
) -> APIError:
    """The typed error for an envelope ``code``; undocumented codes give a plain APIError."""
    cls = _BY_CODE.get(code, APIError)
    return cls(
        message or f"the service answered code {code}",
        code=code,
        operation=operation,
        http_status=http_status,
        task_id=task_id,
    )
