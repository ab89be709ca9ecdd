"""
The embedded grant store: one SQLite file in WAL mode.

Several processes on one host may share the file; each batch is one
`BEGIN IMMEDIATE` transaction, and counts are added with an upsert, so
concurrent writers sum correctly. For several hosts, use PostgreSQL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ._model import (
    SCHEMA_VERSION,
    Batch,
    RefusalKey,
    RefusalRow,
    Usage,
    UsageKey,
    UsageRow,
    batch_rows,
)

__all__ = ["SqliteStore"]

logger = logging.getLogger("maskinporten_guard.stores")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS grant_usage (
    scope TEXT NOT NULL,
    consumer TEXT NOT NULL,
    supplier TEXT NOT NULL,
    day TEXT NOT NULL,
    requests INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (scope, consumer, supplier, day)
);
CREATE TABLE IF NOT EXISTS grant_refusals (
    reason TEXT NOT NULL,
    consumer TEXT NOT NULL,
    supplier TEXT NOT NULL,
    scope TEXT NOT NULL,
    day TEXT NOT NULL,
    refusals INTEGER NOT NULL,
    PRIMARY KEY (reason, consumer, supplier, scope, day)
);
CREATE TABLE IF NOT EXISTS flushed_batches (
    batch_id TEXT PRIMARY KEY,
    flushed_at REAL NOT NULL
);
"""

_ADD_USAGE = """
INSERT INTO grant_usage
    (scope, consumer, supplier, day, requests, first_seen, last_seen)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (scope, consumer, supplier, day) DO UPDATE SET
    requests = requests + excluded.requests,
    first_seen = MIN(first_seen, excluded.first_seen),
    last_seen = MAX(last_seen, excluded.last_seen)
"""

_ADD_REFUSALS = """
INSERT INTO grant_refusals (reason, consumer, supplier, scope, day, refusals)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (reason, consumer, supplier, scope, day) DO UPDATE SET
    refusals = refusals + excluded.refusals
"""

BATCH_MEMORY_SECONDS = 7 * 86_400
"""How long written batch ids are kept to recognise a retried batch."""


def _window(since: date | None, until: date | None) -> tuple[str, str]:
    return (since or date.min).isoformat(), (until or date.max).isoformat()


class SqliteStore:
    """
    A `GrantStore` in one SQLite file.

    One connection is shared by the threads of a process behind a lock;
    `busy_timeout` lets writers from other processes wait for each other.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        """
        Args:
            path: the database file; created when missing.
            busy_timeout: seconds to wait for another writer before failing.
        """
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the SQLite grant store {self.path!r}: {exc}; "
                "check that the directory exists and is writable"
            ) from exc
        self._checked = False

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cursor = self._db.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                yield cursor
                cursor.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            finally:
                cursor.close()

    def ensure_schema(self) -> None:
        """Create the tables if missing and check the schema version."""
        try:
            with self._transaction() as cursor:
                # Statement by statement: executescript would commit on its own.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        cursor.execute(statement)
                found = cursor.execute(
                    "SELECT MAX(version) FROM schema_version"
                ).fetchone()[0]
                if found is None:
                    cursor.execute(
                        "INSERT INTO schema_version (version) VALUES (?)",
                        (SCHEMA_VERSION,),
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot set up the SQLite grant store: {exc}") from exc
        if found is not None and found > SCHEMA_VERSION:
            raise StoreError(
                f"the grant store {self.path!r} has schema version {found}, newer "
                f"than version {SCHEMA_VERSION} this release knows; upgrade "
                "maskinporten-guard"
            )
        self._checked = True

    def write(self, batch: Batch) -> bool:
        """Add `batch` in one transaction unless its id was written before."""
        if not self._checked:
            self.ensure_schema()
        now = time.time()
        usage, refusals = batch_rows(batch, date.isoformat)
        try:
            with self._transaction() as cursor:
                cursor.execute(
                    "INSERT INTO flushed_batches (batch_id, flushed_at) VALUES (?, ?) "
                    "ON CONFLICT (batch_id) DO NOTHING",
                    (batch.id, now),
                )
                if cursor.rowcount == 0:
                    logger.info("batch %s was already written; skipped", batch.id)
                    return False
                cursor.executemany(_ADD_USAGE, usage)
                cursor.executemany(_ADD_REFUSALS, refusals)
                cursor.execute(
                    "DELETE FROM flushed_batches WHERE flushed_at < ?",
                    (now - BATCH_MEMORY_SECONDS,),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to the SQLite grant store: {exc}") from exc

        return True

    def read_usage(
        self, since: date | None = None, until: date | None = None
    ) -> list[UsageRow]:
        """Usage counts for the days from `since` to `until`, both included."""
        query = (
            "SELECT scope, consumer, supplier, day, requests, first_seen, last_seen "
            "FROM grant_usage WHERE day >= ? AND day <= ?"
        )
        rows = self._read(query, _window(since, until))

        return [
            UsageRow(
                UsageKey(scope, consumer, supplier or None, date.fromisoformat(day)),
                Usage(requests, first, last),
            )
            for scope, consumer, supplier, day, requests, first, last in rows
        ]

    def read_refusals(
        self, since: date | None = None, until: date | None = None
    ) -> list[RefusalRow]:
        """Refusal counts for the days from `since` to `until`, both included."""
        query = (
            "SELECT reason, consumer, supplier, scope, day, refusals "
            "FROM grant_refusals WHERE day >= ? AND day <= ?"
        )
        rows = self._read(query, _window(since, until))

        return [
            RefusalRow(
                RefusalKey(
                    reason,
                    consumer,
                    supplier or None,
                    scope or None,
                    date.fromisoformat(day),
                ),
                count,
            )
            for reason, consumer, supplier, scope, day, count in rows
        ]

    def _read(self, query: str, params: tuple[str, str]) -> list[Any]:
        if not self._checked:
            self.ensure_schema()
        try:
            with self._lock:
                rows: list[Any] = self._db.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the SQLite grant store: {exc}") from exc

        return rows

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
