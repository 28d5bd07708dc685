"""Injected trouble: scenarios forced through the admin route, and seeded random faults."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._operations import Operation

__all__ = ["FAULTS", "FaultDice", "Rule", "Scenarios", "TaskFail", "rule_from_json"]

#: "cut": close without a reply, before acting; "cut_after": create the task, then cut;
#: "slow": answer after ``delay``; "html502": a proxy's HTML page; "http": a bare status.
FAULTS = frozenset({"cut", "cut_after", "slow", "html502", "http"})
STORAGE_OPERATIONS = frozenset({"storage_put", "storage_get"})
_OPERATIONS = frozenset({op.value for op in Operation} | STORAGE_OPERATIONS | {"any"})


@attrs.frozen
class TaskFail:
    """The task is created but ends failed with this status code and message."""

    code: int = 3
    message: str = "Task exception occurred"


@attrs.define
class Rule:
    operation: str
    key: str | None = None
    count: int = 1
    code: int | None = None
    message: str | None = None
    fault: str | None = None
    delay: float | None = None
    http_status: int | None = None
    retry_after: float | None = None
    task_fail: TaskFail | None = None
    faces: int | None = None

    def matches(self, operation: str, keys: Iterable[str]) -> bool:
        if self.operation not in ("any", operation):
            return False
        return self.key is None or any(self.key in key for key in keys)


def rule_from_json(data: Mapping[str, Any]) -> Rule:
    """A scenario rule from the admin route's JSON; ValueError names what is wrong."""
    unknown = set(data) - {field.name for field in attrs.fields(Rule)}
    if unknown:
        raise ValueError(f"unknown scenario fields: {', '.join(sorted(unknown))}")
    operation = str(data.get("operation", "any"))
    if operation not in _OPERATIONS:
        raise ValueError(
            f"unknown operation {operation!r}; known: {', '.join(sorted(_OPERATIONS))}"
        )
    fault = data.get("fault")
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
    if fault == "http" and data.get("http_status") is None:
        raise ValueError('fault "http" needs http_status')
    task_fail = data.get("task_fail")
    if task_fail is not None and not isinstance(task_fail, Mapping):
        raise ValueError("task_fail must be an object {code, message}")
    count = int(data.get("count", 1))
    if count < 1:
        raise ValueError("count must be at least 1")

    def number(name: str, kind: type[float] | type[int]) -> Any:
        value = data.get(name)
        return None if value is None else kind(value)

    return Rule(
        operation=operation,
        key=None if data.get("key") is None else str(data["key"]),
        count=count,
        code=number("code", int),
        message=None if data.get("message") is None else str(data["message"]),
        fault=fault,
        delay=number("delay", float),
        http_status=number("http_status", int),
        retry_after=number("retry_after", float),
        task_fail=None
        if task_fail is None
        else TaskFail(
            int(task_fail.get("code", 3)), str(task_fail.get("message", TaskFail.message))
        ),
        faces=number("faces", int),
    )


class Scenarios:
    """Rules waiting for matching requests; each match uses one of a rule's ``count``."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []

    def add(self, rule: Rule) -> None:
        self._rules.append(rule)

    def take(self, operation: str, keys: Iterable[str]) -> Rule | None:
        keys = list(keys)
        for rule in self._rules:
            if rule.matches(operation, keys):
                rule.count -= 1
                if rule.count <= 0:
                    self._rules.remove(rule)
                return rule
        return None

    def pending(self) -> list[dict[str, Any]]:
        return [attrs.asdict(rule) for rule in self._rules]

    def clear(self) -> None:
        self._rules.clear()


class FaultDice:
    """Seeded random faults: one draw per request, so a seed replays the same sequence."""

    def __init__(
        self,
        seed: int | None,
        fail_rate: float,
        cut_rate: float,
        slow_rate: float,
        cut_after_share: float,
    ) -> None:
        self._rng = random.Random(f"faults:{seed}")
        self._fail, self._cut, self._slow = fail_rate, cut_rate, slow_rate
        self._cut_after = cut_after_share

    def draw(self, creates_task: bool) -> str | None:
        """ "fail" (code 500), "html502", "cut", "cut_after", "slow" or None."""
        roll, detail = self._rng.random(), self._rng.random()
        if roll < self._fail:
            return "fail" if detail < 0.5 else "html502"
        if roll < self._fail + self._cut:
            return "cut_after" if creates_task and detail < self._cut_after else "cut"
        if roll < self._fail + self._cut + self._slow:
            return "slow"
        return None
