from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from maskinporten_guard.errors import ConfigurationError, StoreError
from maskinporten_guard.ledger import GrantLedger
from maskinporten_guard.stores import (
    Batch,
    MemoryStore,
    RefusalKey,
    Usage,
    UsageKey,
    open_store,
    storable,
    store_from_env,
)

DAY = date(2025, 10, 9)
AT = 1_760_000_000.0  # 2025-10-09 08:53 UTC

HOSTILE = [
    pytest.param("\x00", id="nul"),
    pytest.param("a\x00b", id="inner-nul"),
    pytest.param("\udc80", id="lone-surrogate"),
    pytest.param("\ud83d", id="high-surrogate"),
    pytest.param('it\'s "quoted"', id="quotes"),
    pytest.param("x'); DROP TABLE grant_usage; --", id="sql"),
    pytest.param("a\\x00", id="escape-lookalike"),
    pytest.param("line\nbreak\r", id="newlines"),
    pytest.param("blåbær", id="norwegian"),
    pytest.param("Z" * 10_240, id="ten-kilobytes"),
]


def _usage(scope: str = "difi:api3", consumer: str = "991825827") -> Batch:
    return Batch("b1", {UsageKey(scope, consumer, None, DAY): Usage(2, AT, AT + 5)}, {})


def test_write_then_read_back(store_url: str) -> None:
    """A written batch reads back with its counts and first and last use."""
    store = open_store(store_url)
    try:
        assert store.write(_usage()) is True
        [row] = store.read_usage()
    finally:
        store.close()

    assert row.key == UsageKey("difi:api3", "991825827", None, DAY)
    assert row.usage == Usage(2, AT, AT + 5)


def test_same_batch_id_is_applied_once(store_url: str) -> None:
    """Writing a batch again under its id changes nothing."""
    store = open_store(store_url)
    try:
        store.write(_usage())
        assert store.write(_usage()) is False
        [row] = store.read_usage()
    finally:
        store.close()

    assert row.usage.requests == 2


def test_batches_add_up_with_least_and_greatest(store_url: str) -> None:
    """Two batches for one key sum requests and widen first and last use."""
    key = UsageKey("difi:api3", "991825827", "889640782", DAY)
    store = open_store(store_url)
    try:
        store.write(Batch("one", {key: Usage(2, AT, AT + 5)}, {}))
        store.write(Batch("two", {key: Usage(3, AT - 9, AT + 1)}, {}))
        [row] = store.read_usage()
    finally:
        store.close()

    assert row.key.supplier == "889640782"
    assert row.usage == Usage(5, AT - 9, AT + 5)


def test_refusals_sum_by_reason(store_url: str) -> None:
    """Refusal counts add up per reason, consumer and scope."""
    key = RefusalKey("insufficient_scope", "991825827", None, "difi:api3", DAY)
    store = open_store(store_url)
    try:
        store.write(Batch("one", {}, {key: 2}))
        store.write(Batch("two", {}, {key: 1}))
        [row] = store.read_refusals()
    finally:
        store.close()

    assert (row.key, row.refusals) == (key, 3)


def test_read_window_includes_both_ends(store_url: str) -> None:
    """since and until select whole UTC days, both included."""
    days = [date(2025, 10, d) for d in (8, 9, 10, 11)]
    usage = {UsageKey("a:b", "991825827", None, d): Usage(1, AT, AT) for d in days}
    store = open_store(store_url)
    try:
        store.write(Batch("w", usage, {}))
        rows = store.read_usage(date(2025, 10, 9), date(2025, 10, 10))
    finally:
        store.close()

    assert sorted(row.key.day for row in rows) == days[1:3]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_text_round_trips_escaped(store_url: str, value: str) -> None:
    """Hostile claim text is stored escaped the same way by every store."""
    key = UsageKey(value, value, value, DAY)
    refusal = RefusalKey(value, value, value, value, DAY)
    store = open_store(store_url)
    try:
        store.write(Batch("h", {key: Usage(1, AT, AT)}, {refusal: 1}))
        [row] = store.read_usage()
        [refused] = store.read_refusals()
    finally:
        store.close()

    expected = storable(value)
    assert (row.key.scope, row.key.consumer, row.key.supplier) == (expected,) * 3
    assert refused.key.reason == refused.key.scope == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("991825827", "991825827", id="orgno-unchanged"),
        pytest.param("blåbær", "blåbær", id="letters-unchanged"),
        pytest.param("a\x00", "a\\x00", id="nul-escaped"),
        pytest.param("a\\x00", "a\\\\x00", id="backslash-doubled"),
        pytest.param("\udc80", "\\udc80", id="surrogate-escaped"),
    ],
)
def test_storable_escapes(value: str, expected: str) -> None:
    """storable keeps ordinary text and escapes what databases refuse."""
    assert storable(value) == expected


def test_storable_keeps_long_values_apart() -> None:
    """Two long values sharing a prefix stay distinct and bounded."""
    first, second = storable("A" * 10_000 + "1"), storable("A" * 10_000 + "2")

    assert first != second
    assert len(first) == len(second) == 512


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A store written by a newer release is refused with a clear error."""
    path = tmp_path / "grants.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    db.close()

    with pytest.raises(StoreError, match="upgrade maskinporten-guard"):
        open_store(f"sqlite:///{path}")


@pytest.mark.postgres
def test_newer_postgres_schema_is_refused(
    postgres_url: str, postgres_schema: str
) -> None:
    """PostgreSQL refuses a newer schema version just the same."""
    import psycopg
    from psycopg import sql

    url = f"{postgres_url}?schema={postgres_schema}"
    open_store(url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {}.schema_version SET version = 99").format(
                sql.Identifier(postgres_schema)
            )
        )

    with pytest.raises(StoreError, match="upgrade maskinporten-guard"):
        open_store(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("mysql://x", id="unknown-scheme"),
        pytest.param("sqlite://relative.db", id="two-slashes"),
        pytest.param("sqlite:///", id="no-path"),
    ],
)
def test_bad_store_url_is_a_configuration_error(url: str) -> None:
    """An unusable store URL names the setting and the accepted forms."""
    with pytest.raises(ConfigurationError, match="MASKINPORTEN_GRANTS_STORE"):
        open_store(url)


def test_store_from_env_reads_the_variable() -> None:
    """MASKINPORTEN_GRANTS_STORE chooses the store."""
    store = store_from_env({"MASKINPORTEN_GRANTS_STORE": "memory://"})

    assert isinstance(store, MemoryStore)


def test_unreachable_postgres_is_a_store_error() -> None:
    """A closed port fails fast with StoreError, not a hang."""
    with pytest.raises(StoreError, match="PostgreSQL"):
        open_store(
            "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1&pool_timeout=0.5"
        )


def _write_from_process(url: str, rounds: int) -> None:
    ledger = GrantLedger(open_store(url))
    for round_ in range(rounds):
        for _ in range(10):
            ledger.record_allowed("991825827", None, ["a:one", "a:two"], at=AT)
            ledger.record_refused("991825827", None, "consumer", at=AT + round_)
        ledger.flush()
    ledger.close()


def test_processes_writing_the_same_keys_sum_exactly(database_url: str) -> None:
    """Four processes flushing the same keys at once lose and double nothing."""
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_from_process, args=(database_url, 25))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]

    store = open_store(database_url)
    try:
        usage = {row.key.scope: row.usage.requests for row in store.read_usage()}
        refusals = sum(row.refusals for row in store.read_refusals())
    finally:
        store.close()

    assert usage == {"a:one": 1000, "a:two": 1000}
    assert refusals == 1000
