"""
The shared grant store: PostgreSQL through psycopg 3 and a connection pool.

Use it when several processes or hosts share one ledger. Each batch is one
transaction; counts are added with `INSERT ... ON CONFLICT DO UPDATE`, so
concurrent writers sum correctly. Needs the `postgres` extra.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, StoreError
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

if TYPE_CHECKING:
    from psycopg import sql

__all__ = ["PostgresStore"]


def _as_is(day: date) -> date:
    # psycopg adapts dates itself.
    return day


logger = logging.getLogger("maskinporten_guard.stores")

BATCH_MEMORY_SECONDS = 7 * 86_400
"""How long written batch ids are kept to recognise a retried batch."""

_SCHEMA = [
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    "CREATE TABLE IF NOT EXISTS {schema}.schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS {schema}.grant_usage (
        scope TEXT NOT NULL,
        consumer TEXT NOT NULL,
        supplier TEXT NOT NULL,
        day DATE NOT NULL,
        requests BIGINT NOT NULL,
        first_seen DOUBLE PRECISION NOT NULL,
        last_seen DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (scope, consumer, supplier, day))""",
    """CREATE TABLE IF NOT EXISTS {schema}.grant_refusals (
        reason TEXT NOT NULL,
        consumer TEXT NOT NULL,
        supplier TEXT NOT NULL,
        scope TEXT NOT NULL,
        day DATE NOT NULL,
        refusals BIGINT NOT NULL,
        PRIMARY KEY (reason, consumer, supplier, scope, day))""",
    """CREATE TABLE IF NOT EXISTS {schema}.flushed_batches (
        batch_id TEXT PRIMARY KEY,
        flushed_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
]

_ADD_USAGE = """
INSERT INTO {schema}.grant_usage AS u
    (scope, consumer, supplier, day, requests, first_seen, last_seen)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (scope, consumer, supplier, day) DO UPDATE SET
    requests = u.requests + excluded.requests,
    first_seen = LEAST(u.first_seen, excluded.first_seen),
    last_seen = GREATEST(u.last_seen, excluded.last_seen)
"""

_ADD_REFUSALS = """
INSERT INTO {schema}.grant_refusals AS r
    (reason, consumer, supplier, scope, day, refusals)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (reason, consumer, supplier, scope, day) DO UPDATE SET
    refusals = r.refusals + excluded.refusals
"""


def _import_psycopg() -> Any:
    try:
        import psycopg  # noqa: F401 - imported for its error when missing
        import psycopg_pool
    except ImportError as exc:
        raise ConfigurationError(
            "the PostgreSQL grant store needs psycopg 3 and psycopg-pool; "
            "install them with `pip install maskinporten-guard[postgres]`"
        ) from exc

    return psycopg_pool


class PostgresStore:
    """
    A `GrantStore` in a PostgreSQL schema, shared by any number of writers.

    Connections are checked when taken from the pool, so one the server
    dropped is replaced; a server that is down fails the write, and the ledger
    retries the same batch later.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 5.0,
    ) -> None:
        """
        Args:
            conninfo: a libpq connection string or `postgresql://` URL.
            schema: the schema holding the tables; created when missing.
            min_size: connections the pool keeps open.
            max_size: the most connections the pool opens.
            timeout: seconds to wait for a connection before a write fails.
        """
        pool_module = _import_psycopg()
        from psycopg import sql

        self.schema = schema
        self._sql = sql
        self._schema_id = sql.Identifier(schema)
        self._timeout = timeout
        self._pool = pool_module.ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            # A connection the server dropped is replaced before use, not failed on.
            check=pool_module.ConnectionPool.check_connection,
            open=False,
            name="maskinporten-guard",
        )
        self._pool.open(wait=False)
        self._checked = False

    def _statement(self, text: str) -> sql.Composed:
        return self._sql.SQL(text).format(schema=self._schema_id)

    def ensure_schema(self) -> None:
        """Create the schema and tables if missing and check the version."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                # One creator at a time: concurrent CREATE ... IF NOT EXISTS races.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    (f"maskinporten_guard:{self.schema}",),
                )
                for statement in _SCHEMA:
                    conn.execute(self._statement(statement))
                found = conn.execute(
                    self._statement("SELECT MAX(version) FROM {schema}.schema_version")
                ).fetchone()[0]
                if found is None:
                    conn.execute(
                        self._statement(
                            "INSERT INTO {schema}.schema_version (version) VALUES (%s)"
                        ),
                        (SCHEMA_VERSION,),
                    )
        except Exception as exc:
            # psycopg errors and pool timeouts alike: the store is not usable.
            raise StoreError(
                f"cannot set up the PostgreSQL grant store: {exc}"
            ) from exc
        if found is not None and found > SCHEMA_VERSION:
            raise StoreError(
                f"the grant store schema {self.schema!r} has version {found}, newer "
                f"than version {SCHEMA_VERSION} this release knows; upgrade "
                "maskinporten-guard"
            )
        self._checked = True

    def write(self, batch: Batch) -> bool:
        """Add `batch` in one transaction unless its id was written before."""
        if not self._checked:
            self.ensure_schema()
        usage, refusals = batch_rows(batch, _as_is)
        try:
            with self._pool.connection() as conn, conn.transaction():
                cursor = conn.execute(
                    self._statement(
                        "INSERT INTO {schema}.flushed_batches (batch_id) VALUES (%s) "
                        "ON CONFLICT (batch_id) DO NOTHING"
                    ),
                    (batch.id,),
                )
                if cursor.rowcount == 0:
                    logger.info("batch %s was already written; skipped", batch.id)
                    return False
                with conn.cursor() as many:
                    many.executemany(self._statement(_ADD_USAGE), usage)
                    many.executemany(self._statement(_ADD_REFUSALS), refusals)
                conn.execute(
                    self._statement(
                        "DELETE FROM {schema}.flushed_batches "
                        "WHERE flushed_at < now() - make_interval(secs => %s)"
                    ),
                    (BATCH_MEMORY_SECONDS,),
                )
        except Exception as exc:
            raise StoreError(
                f"cannot write to the PostgreSQL grant store: {exc}"
            ) from exc

        return True

    def read_usage(
        self, since: date | None = None, until: date | None = None
    ) -> list[UsageRow]:
        """Usage counts for the days from `since` to `until`, both included."""
        rows = self._read(
            "SELECT scope, consumer, supplier, day, requests, first_seen, last_seen "
            "FROM {schema}.grant_usage WHERE day >= %s AND day <= %s",
            since,
            until,
        )

        return [
            UsageRow(
                UsageKey(scope, consumer, supplier or None, day),
                Usage(requests, first, last),
            )
            for scope, consumer, supplier, day, requests, first, last in rows
        ]

    def read_refusals(
        self, since: date | None = None, until: date | None = None
    ) -> list[RefusalRow]:
        """Refusal counts for the days from `since` to `until`, both included."""
        rows = self._read(
            "SELECT reason, consumer, supplier, scope, day, refusals "
            "FROM {schema}.grant_refusals WHERE day >= %s AND day <= %s",
            since,
            until,
        )

        return [
            RefusalRow(
                RefusalKey(reason, consumer, supplier or None, scope or None, day),
                count,
            )
            for reason, consumer, supplier, scope, day, count in rows
        ]

    def _read(self, query: str, since: date | None, until: date | None) -> list[Any]:
        if not self._checked:
            self.ensure_schema()
        try:
            with self._pool.connection() as conn:
                rows: list[Any] = conn.execute(
                    self._statement(query), (since or date.min, until or date.max)
                ).fetchall()
        except Exception as exc:
            raise StoreError(f"cannot read the PostgreSQL grant store: {exc}") from exc

        return rows

    def close(self) -> None:
        """Close the pool and its connections."""
        self._pool.close()
