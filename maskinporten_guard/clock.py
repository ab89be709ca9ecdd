"""
Time, injectable: every component takes a `Clock` so tests never sleep.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "system_clock"]


class Clock(Protocol):
    """A callable answering the current time in seconds since the epoch."""

    def __call__(self) -> float: ...


def system_clock() -> float:
    """The real wall-clock time."""
    return time.time()


class ManualClock:
    """
    A clock that moves only when told to, for tests and simulations.

    Not thread-safe for concurrent `advance` calls; reading it is.
    """

    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`."""
        self.now += seconds
