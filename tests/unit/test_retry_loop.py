"""``RetryPolicy.retrying``: the one retry loop of every request and transfer."""

from __future__ import annotations

import anyio
import pytest

from miocreate_async import (
    ConnectError,
    InvalidInputError,
    RetryPolicy,
    ServerError,
)
from miocreate_async._retry import is_transient

pytestmark = pytest.mark.anyio

NO_WAIT = RetryPolicy(attempts=3, initial=0.0, maximum=0.0, jitter=False)


async def run(
    policy: RetryPolicy, failures: list[BaseException], until: float | None = None
) -> list[int]:
    """Tries an operation that fails with ``failures`` in turn, then succeeds; the try numbers."""
    tries: list[int] = []
    async for attempt in policy.retrying(on=is_transient, until=until):
        with attempt:
            tries.append(attempt.number)
            if failures:
                raise failures.pop(0)
    return tries


@pytest.mark.parametrize(
    ("failures", "tries"),
    [
        (0, [1]),
        (1, [1, 2]),
        (2, [1, 2, 3]),
    ],
)
async def test_transient_failures_are_retried(failures: int, tries: list[int]) -> None:
    errors: list[BaseException] = [ServerError("busy") for _ in range(failures)]
    assert await run(NO_WAIT, errors) == tries


async def test_the_last_error_is_raised_when_no_try_is_left() -> None:
    last = ConnectError("third")
    with pytest.raises(ConnectError) as raised:
        await run(NO_WAIT, [ServerError("first"), ServerError("second"), last])
    assert raised.value is last


async def test_an_error_that_is_not_retryable_goes_through_at_once() -> None:
    with pytest.raises(InvalidInputError):
        await run(NO_WAIT, [InvalidInputError("bad")])


async def test_other_exceptions_go_through() -> None:
    with pytest.raises(KeyError):
        await run(NO_WAIT, [KeyError("x")])


async def test_a_retry_after_beyond_the_maximum_is_not_waited_for() -> None:
    error = ServerError("come back in an hour")
    error.retry_after = 3600.0
    with pytest.raises(ServerError):
        await run(NO_WAIT, [error])


async def test_until_retries_past_the_attempts_while_time_is_left() -> None:
    errors: list[BaseException] = [ServerError("busy") for _ in range(6)]
    tries = await run(NO_WAIT, errors, until=anyio.current_time() + 60)
    assert tries == [1, 2, 3, 4, 5, 6, 7]


async def test_until_stops_when_the_wait_would_pass_the_deadline() -> None:
    slow = RetryPolicy(initial=30.0, maximum=30.0, jitter=False)
    with pytest.raises(ServerError):
        await run(slow, [ServerError("busy")], until=anyio.current_time() + 1)
