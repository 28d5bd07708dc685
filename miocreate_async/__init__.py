"""miocreate_async: an asyncio-native, typed client for the MioCreate Face Swap API.

>>> async with MioCreate() as mc:                     # credentials from the environment
...     result = await mc.swap_image("photo.jpg", face="me.jpg", hd=True)
...     await result.download("out/")
"""

# Imported under private names: the package's public names are exactly __all__.
import contextlib as _contextlib
import importlib as _importlib
import typing as _typing

from ._client import MioCreate, TaskRef
from ._config import DEFAULT_BASE_URL, Config, PollPolicy, PollSchedule
from ._errors import (
    AllowanceExceededError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConnectError,
    ContentPolicyError,
    EmptySourceError,
    FileError,
    FileTooLargeError,
    HTTPStatusError,
    InsufficientCreditsError,
    InvalidInputError,
    KeyNotFoundError,
    MioCreateError,
    MioCreateTimeoutError,
    MultipleFacesError,
    NoFaceDetectedError,
    NotSentError,
    ProtocolError,
    RequestQuotaError,
    ResultTooLargeError,
    ServerError,
    ServiceUnreachableError,
    SourceNotFoundError,
    SourceTooSlowError,
    StorageError,
    SubmissionUncertainError,
    SwapInterrupted,
    TargetPolicyError,
    TaskBudgetError,
    TaskExceptionError,
    TaskFailedError,
    TaskTimeoutError,
    TransportError,
    UnsupportedFormatError,
    UrlExpiredError,
)
from ._fairness import Allowance, Fairness, KeyLimits
from ._formats import MAX_UPLOAD_BYTES, MediaType
from ._models import (
    DetectedFace,
    FacePair,
    Hd,
    ImageSwapResult,
    Keypoints,
    Point,
    ProgressCallback,
    TaskHandle,
    TaskInfo,
    TaskResult,
    TaskStatus,
    UploadTarget,
    VideoSwapResult,
)
from ._operations import DEFAULT_PATHS, Operation, TaskKind
from ._retry import RetryPolicy
from ._version import __version__

if _typing.TYPE_CHECKING:
    from ._batch import (
        BatchEvent,
        BatchStats,
        JobDone,
        SwapJob,
        SwapOutcome,
        SwapResults,
        TaskCreated,
        TaskPolled,
        UploadProgress,
    )
    from ._estimate import Estimate, Prices
    from ._journal import (
        InputChangedError,
        JobState,
        Journal,
        JournalError,
        JournalMismatchError,
        SQLiteJournal,
    )
    from ._journal._report import SpendReport
    from ._transfer._inputs import Key, MediaInput, StreamSource, UploadSource

# The batch machinery loads on first use, so a plain ``import miocreate_async`` stays light.
_LAZY = dict.fromkeys(
    (
        "BatchEvent",
        "BatchStats",
        "JobDone",
        "SwapJob",
        "SwapOutcome",
        "SwapResults",
        "TaskCreated",
        "TaskPolled",
        "UploadProgress",
    ),
    "._batch",
)
# So does the journal (and sqlite3 only with a SQLiteJournal).
_LAZY.update(
    dict.fromkeys(
        (
            "InputChangedError",
            "JobState",
            "Journal",
            "JournalError",
            "JournalMismatchError",
            "SQLiteJournal",
        ),
        "._journal",
    )
)
# And what comes before and after a batch: its estimate, its spend report.
_LAZY.update(dict.fromkeys(("Estimate", "Prices"), "._estimate"))
_LAZY["SpendReport"] = "._journal._report"
# And the input types with the upload code they belong to (named mostly in annotations).
_LAZY.update(
    dict.fromkeys(("Key", "MediaInput", "StreamSource", "UploadSource"), "._transfer._inputs")
)


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    _present(value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "APIError",
    "Allowance",
    "AllowanceExceededError",
    "AuthenticationError",
    "BadRequestError",
    "BatchEvent",
    "BatchStats",
    "ClientClosedError",
    "Config",
    "ConfigurationError",
    "ConnectError",
    "ContentPolicyError",
    "DEFAULT_BASE_URL",
    "DEFAULT_PATHS",
    "DetectedFace",
    "EmptySourceError",
    "Estimate",
    "FacePair",
    "Fairness",
    "FileError",
    "FileTooLargeError",
    "HTTPStatusError",
    "Hd",
    "ImageSwapResult",
    "InputChangedError",
    "InsufficientCreditsError",
    "InvalidInputError",
    "JobDone",
    "JobState",
    "Journal",
    "JournalError",
    "JournalMismatchError",
    "Key",
    "KeyLimits",
    "KeyNotFoundError",
    "Keypoints",
    "MAX_UPLOAD_BYTES",
    "MediaInput",
    "MediaType",
    "MioCreate",
    "MioCreateError",
    "MioCreateTimeoutError",
    "MultipleFacesError",
    "NoFaceDetectedError",
    "NotSentError",
    "Operation",
    "Point",
    "PollPolicy",
    "PollSchedule",
    "Prices",
    "ProgressCallback",
    "ProtocolError",
    "RequestQuotaError",
    "ResultTooLargeError",
    "RetryPolicy",
    "SQLiteJournal",
    "ServerError",
    "ServiceUnreachableError",
    "SourceNotFoundError",
    "SourceTooSlowError",
    "SpendReport",
    "StorageError",
    "StreamSource",
    "SubmissionUncertainError",
    "SwapInterrupted",
    "SwapJob",
    "SwapOutcome",
    "SwapResults",
    "TargetPolicyError",
    "TaskBudgetError",
    "TaskCreated",
    "TaskExceptionError",
    "TaskFailedError",
    "TaskHandle",
    "TaskInfo",
    "TaskKind",
    "TaskPolled",
    "TaskRef",
    "TaskResult",
    "TaskStatus",
    "TaskTimeoutError",
    "TransportError",
    "UnsupportedFormatError",
    "UploadProgress",
    "UploadSource",
    "UploadTarget",
    "UrlExpiredError",
    "VideoSwapResult",
    "__version__",
]


def _present(obj: object) -> None:
    """Users see ``miocreate_async.MioCreate``, not the private module it lives in."""
    if getattr(obj, "__module__", "").startswith("miocreate_async._"):
        with _contextlib.suppress(AttributeError, TypeError):
            obj.__module__ = __name__


for _name in __all__:
    if _name not in _LAZY:
        _present(globals()[_name])
del _name
