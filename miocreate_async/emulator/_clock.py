"""The emulator's clock: wall time plus an offset tests can advance, so expiry needs no sleep."""

from __future__ import annotations

import time

__all__ = ["Clock"]


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        """Epoch seconds on the emulator's clock."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds

    def reset(self) -> None:
        self._offset = 0.0
