"""Everything the emulator knows, in one place the routes share; reset clears it."""

from __future__ import annotations

import collections
import secrets
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from .._operations import TaskKind
from .._wire import Token
from ._clock import Clock
from ._engine import Engine
from ._faults import FaultDice, Scenarios
from ._ledger import Ledger
from ._settings import EmulatorSettings
from ._signing import Signer
from ._storage import Storage

__all__ = ["State"]

# Expired tokens are dropped once this many are held, so memory stays flat.
_TOKENS_KEPT = 10_000


class State:
    def __init__(self, settings: EmulatorSettings, data_dir: Path, executor: Executor) -> None:
        self.settings = settings
        self.seed = settings.seed if settings.seed is not None else secrets.randbits(32)
        self.clock = Clock()
        self.signer = Signer(self.clock)
        self.storage = Storage(data_dir, executor)
        self.ledger = Ledger(settings.max_logged_requests)
        self.engine = Engine(settings, self.seed, self.clock, self.storage, self.signer, executor)
        self.scenarios = Scenarios()
        self._tokens: dict[str, float] = {}
        self._reset_counters()

    def _reset_counters(self) -> None:
        settings = self.settings
        self.dice = FaultDice(
            self.seed,
            settings.fail_rate,
            settings.cut_rate,
            settings.slow_rate,
            settings.cut_after_share,
        )
        self._recent: collections.deque[float] = collections.deque()

    def reset(self) -> None:
        """Forget tasks, objects, requests, scenarios and spent credits; tokens stay valid."""
        self.engine.reset()
        self.storage.reset()
        self.ledger.reset()
        self.scenarios.clear()
        self.clock.reset()
        self._reset_counters()

    # --- auth ---------------------------------------------------------------------------------

    def issue_token(self) -> Token:
        now = self.clock.now()
        if len(self._tokens) >= _TOKENS_KEPT:
            self._tokens = {token: end for token, end in self._tokens.items() if end > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + self.settings.token_ttl
        return Token(access_token=token, expires_in=int(self.settings.token_ttl))

    def authorized(self, header: str | None) -> bool:
        """``<scheme> <token>`` (``Bearer`` unless set otherwise) with a token that has not
        expired on the emulator's clock. Any other shape, a malformed header included, is not."""
        scheme = self.settings.auth_scheme
        parts = (header or "").split()
        if scheme:
            if len(parts) != 2 or parts[0].lower() != scheme.lower():
                return False
            token = parts[1]
        else:
            if len(parts) != 1:
                return False
            token = parts[0]
        expires = self._tokens.get(token)
        return expires is not None and self.clock.now() < expires

    # --- limits -------------------------------------------------------------------------------

    def over_quota(self) -> bool:
        """Whether this request exceeds ``request_quota`` per second (a sliding window)."""
        quota = self.settings.request_quota
        if quota is None:
            return False
        now = time.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= quota:
            return True
        self._recent.append(now)
        return False

    @property
    def credits_left(self) -> int:
        return self.settings.credits - self.ledger.credits_spent

    def spend(self, kind: TaskKind) -> bool:
        cost = self.settings.credit_cost[kind]
        if cost > self.credits_left:
            return False
        self.ledger.credits_spent += cost
        return True

    def snapshot(self) -> dict[str, Any]:
        return {
            "tasks": self.engine.snapshot(),
            **self.ledger.snapshot(),
            "credits_left": self.credits_left,
            "scenarios": self.scenarios.pending(),
            "clock": self.clock.now(),
            "seed": self.seed,
        }
