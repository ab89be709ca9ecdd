"""
Counters and gauges for operators, through one small hook.

Components report to a `Metrics` object; the default drops everything. Plug
in `PrometheusMetrics` (the `prometheus` extra) or any object with the same
three methods. Metric names are stable and listed in the README.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Metrics", "NullMetrics"]


class Metrics(Protocol):
    """Where components report what they count, set and time."""

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add `value` to the counter `name` with these labels."""

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set the gauge `name` to `value`."""

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation (such as a latency in seconds) of `name`."""


class NullMetrics:
    """Metrics that go nowhere: the default."""

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Drop the increment."""

    def set(self, name: str, value: float, **labels: str) -> None:
        """Drop the value."""

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Drop the observation."""
