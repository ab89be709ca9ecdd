"""
How much the grant ledger costs: per recorded request, and per flush.

    .venv/bin/python bench/bench_ledger.py [postgresql://postgres@127.0.0.1/test]

Records one allowed request for each of 10 000 distinct (scope, consumer)
pairs, then again for the same pairs (the steady state: keys already
pending), and flushes each batch to SQLite and, when reachable, PostgreSQL.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path

from maskinporten_guard.errors import StoreError
from maskinporten_guard.ledger import GrantLedger
from maskinporten_guard.stores import GrantStore, open_store

PAIRS = [(f"prefix:scope{n % 100}", f"{900_000_000 + n // 100}") for n in range(10_000)]
AT = 1_760_000_000.0


def _record(ledger: GrantLedger) -> float:
    started = time.perf_counter()
    for scope, consumer in PAIRS:
        ledger.record_allowed(consumer, None, (scope,), AT)

    return (time.perf_counter() - started) / len(PAIRS)


def _measure(name: str, store: GrantStore) -> list[str]:
    ledger = GrantLedger(store)
    new_key = _record(ledger)
    known_key = _record(ledger)
    started = time.perf_counter()
    written = ledger.flush()
    first_flush = time.perf_counter() - started
    _record(ledger)
    started = time.perf_counter()
    ledger.flush()
    update_flush = time.perf_counter() - started
    ledger.close()

    return [
        name,
        f"{new_key * 1e9:,.0f} ns",
        f"{known_key * 1e9:,.0f} ns",
        f"{written:,}",
        f"{first_flush * 1e3:,.0f} ms",
        f"{update_flush * 1e3:,.0f} ms",
    ]


def main() -> None:
    postgres = (
        sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1/test"
    )
    rows = []
    rows.append(_measure("memory", open_store("memory://")))
    with tempfile.TemporaryDirectory() as folder:
        rows.append(
            _measure("sqlite", open_store(f"sqlite:///{Path(folder) / 'b.db'}"))
        )
    schema = f"mpg_bench_{uuid.uuid4().hex[:8]}"
    try:
        store = open_store(f"{postgres}?schema={schema}")
    except StoreError as exc:
        print(f"PostgreSQL skipped: {exc}")
    else:
        rows.append(_measure("postgres", store))
        import psycopg
        from psycopg import sql

        with psycopg.connect(postgres, autocommit=True) as conn:
            drop = sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema))
            conn.execute(drop)

    header = ["store", "record (new key)", "record (known)", "keys", "flush (insert)"]
    header.append("flush (update)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.rjust(width) for cell, width in zip(row, widths, strict=True)
            )
        )


if __name__ == "__main__":
    main()
