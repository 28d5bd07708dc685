"""The spend report's value: what a batch spent and what is left to save (see ``_spend``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["SpendReport"]


@attrs.frozen(kw_only=True)
class SpendReport:
    """Tasks created (paid) and how they ended.

    ``created`` is {day (UTC, "YYYY-MM-DD"): {kind: tasks}}, the day the task's creation was
    recorded (in a journal of an earlier version: the day its result was made, or of its last
    step). ``uncertain`` creations
    may have been paid too. ``expiring`` lists the task ids of results not saved that expire
    within 24 hours; ``save_command`` saves one (``{task}`` and ``{path}`` filled in).
    """

    created: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    succeeded: int = 0
    #: Failed jobs by code (or by error type, without a code); a failed job may have been
    #: refused before any creation.
    failed: Mapping[str, int] = attrs.field(factory=dict)
    uncertain: int = 0
    saved: int = 0
    expiring: tuple[int, ...] = ()
    save_command: str = "miocreate task {task} --wait -o {path}"

    @property
    def tasks_created(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.created.values())

    def by_kind(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for kinds in self.created.values():
            totals.update(kinds)
        return dict(totals)

    def save_commands(self, path: str = "out/") -> list[str]:
        return [self.save_command.format(task=task, path=path) for task in self.expiring]

    def as_dict(self) -> dict[str, Any]:
        return {
            "tasks_created": self.tasks_created,
            "created_by_kind": self.by_kind(),
            "created_by_day": {day: dict(kinds) for day, kinds in sorted(self.created.items())},
            "succeeded": self.succeeded,
            "failed_by_code": dict(self.failed),
            "uncertain": self.uncertain,
            "results_saved": self.saved,
            "expiring_within_24h": list(self.expiring),
            "save_commands": self.save_commands(),
        }

    def lines(self) -> list[str]:
        """The report as a few lines of text."""
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.by_kind().items()))
        out = [f"tasks created: {self.tasks_created}" + (f" ({kinds})" if kinds else "")]
        for day, per_kind in sorted(self.created.items()):
            text = ", ".join(f"{kind} {n}" for kind, n in sorted(per_kind.items()))
            out.append(f"  {day}: {text}")
        failed = ", ".join(f"{code}: {n}" for code, n in sorted(self.failed.items()))
        out.append(
            f"succeeded {self.succeeded}, failed {sum(self.failed.values())}"
            + (f" ({failed})" if failed else "")
            + f", uncertain {self.uncertain}, results saved {self.saved}"
        )
        if self.expiring:
            out.append(
                f"results expiring within 24 hours: {len(self.expiring)}; save each with: "
                f"{self.save_commands()[0]}" + (" (and so on)" if len(self.expiring) > 1 else "")
            )
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())
