"""One batch over many machines: Taskiq workers, taskiq-redis's stream broker, and the journal
in the same Redis. Needs the extra: ``pip install 'miocreate-async[distributed]'``.

Nothing in the core imports this package.
"""

from __future__ import annotations

try:
    import redis  # noqa: F401
    import taskiq  # noqa: F401
    import taskiq_redis  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    # (No ``as`` name: it would be a module attribute. The cause is chained all the same.)
    raise ImportError(  # noqa: B904
        "miocreate_async.distributed needs the distributed extra: "
        "pip install 'miocreate-async[distributed]'"
    )

from ._driver import DistributedBatch, DistributedOutcome
from ._durability import Durability
from ._errors import BatchLostError, TaskBudgetError, UnsafeRedisError
from ._limits import SharedRateLimiter
from ._worker import Worker, register

__all__ = [
    "BatchLostError",
    "DistributedBatch",
    "DistributedOutcome",
    "Durability",
    "SharedRateLimiter",
    "TaskBudgetError",
    "UnsafeRedisError",
    "Worker",
    "register",
]
