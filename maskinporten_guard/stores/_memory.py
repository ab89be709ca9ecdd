"""
A grant store in memory, for tests and for trying the library out.
"""

from __future__ import annotations

import threading
from datetime import date

from ._model import (
    Batch,
    RefusalKey,
    RefusalRow,
    Usage,
    UsageKey,
    UsageRow,
    storable,
)

__all__ = ["MemoryStore"]


def _within(day: date, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def _optional(text: str | None) -> str | None:
    return None if text is None else storable(text)


class MemoryStore:
    """
    A `GrantStore` in one process's memory; everything is lost at exit.

    It applies the same text rules as the database stores, so tests see what a
    database would return. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: dict[UsageKey, Usage] = {}
        self._refusals: dict[RefusalKey, int] = {}
        self._batches: set[str] = set()

    def ensure_schema(self) -> None:
        """Nothing to create."""

    def write(self, batch: Batch) -> bool:
        """Add `batch` unless its id was written before."""
        with self._lock:
            if batch.id in self._batches:
                return False
            self._batches.add(batch.id)
            for key, usage in batch.usage.items():
                key = UsageKey(
                    storable(key.scope),
                    storable(key.consumer),
                    _optional(key.supplier),
                    key.day,
                )
                old = self._usage.get(key)
                if old is not None:
                    usage = Usage(
                        old.requests + usage.requests,
                        min(old.first_seen, usage.first_seen),
                        max(old.last_seen, usage.last_seen),
                    )
                self._usage[key] = usage
            for rkey, count in batch.refusals.items():
                rkey = RefusalKey(
                    storable(rkey.reason),
                    storable(rkey.consumer),
                    _optional(rkey.supplier),
                    _optional(rkey.scope),
                    rkey.day,
                )
                self._refusals[rkey] = self._refusals.get(rkey, 0) + count

        return True

    def read_usage(
        self, since: date | None = None, until: date | None = None
    ) -> list[UsageRow]:
        """Usage counts for the days from `since` to `until`, both included."""
        with self._lock:
            rows = [
                UsageRow(key, usage)
                for key, usage in self._usage.items()
                if _within(key.day, since, until)
            ]

        return rows

    def read_refusals(
        self, since: date | None = None, until: date | None = None
    ) -> list[RefusalRow]:
        """Refusal counts for the days from `since` to `until`, both included."""
        with self._lock:
            rows = [
                RefusalRow(key, count)
                for key, count in self._refusals.items()
                if _within(key.day, since, until)
            ]

        return rows

    def close(self) -> None:
        """Nothing to release."""
