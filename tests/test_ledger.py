from __future__ import annotations

import itertools
import threading
from datetime import date

import anyio
import pytest

from maskinporten_guard.clock import ManualClock
from maskinporten_guard.errors import StoreError
from maskinporten_guard.ledger import GrantLedger
from maskinporten_guard.stores import Batch, MemoryStore, PostgresStore, open_store

AT = 1_760_000_000.0  # 2025-10-09 UTC


class FlakyStore(MemoryStore):
    """A memory store that fails its next `failures` writes, before or after."""

    def __init__(self, failures: int = 0, *, after_commit: bool = False) -> None:
        super().__init__()
        self.failures = failures
        self.after_commit = after_commit
        self.attempts = 0

    def write(self, batch: Batch) -> bool:
        self.attempts += 1
        if self.failures and not self.after_commit:
            self.failures -= 1
            raise StoreError("down")
        written = super().write(batch)
        if self.failures:
            self.failures -= 1
            raise StoreError("acknowledgement lost")
        return written


class Recorder:
    """Collects metrics calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        self.calls.append(("increment", name, value))

    def set(self, name: str, value: float, **labels: str) -> None:
        self.calls.append(("set", name, value))

    def observe(self, name: str, value: float, **labels: str) -> None:
        self.calls.append(("observe", name, value))


def _requests(store: MemoryStore) -> int:
    return sum(row.usage.requests for row in store.read_usage())


def test_allowed_request_counts_per_scope() -> None:
    """One request authorised by two scopes counts once against each."""
    store = MemoryStore()
    ledger = GrantLedger(store)
    ledger.record_allowed("991825827", None, ["a:one", "a:two"], at=AT)
    ledger.flush()

    assert sorted(row.key.scope for row in store.read_usage()) == ["a:one", "a:two"]


def test_day_is_the_utc_date() -> None:
    """A request just before UTC midnight counts on that UTC day."""
    store = MemoryStore()
    ledger = GrantLedger(store)
    ledger.record_allowed("991825827", None, ["a:b"], at=1_760_054_399.0)
    ledger.record_allowed("991825827", None, ["a:b"], at=1_760_054_400.0)
    ledger.flush()

    days = sorted(row.key.day for row in store.read_usage())
    assert days == [date(2025, 10, 9), date(2025, 10, 10)]


def test_first_and_last_use_are_kept() -> None:
    """Out-of-order times still give the earliest and the latest use."""
    store = MemoryStore()
    ledger = GrantLedger(store)
    for at in (AT + 5, AT, AT + 9, AT + 1):
        ledger.record_allowed("991825827", "889640782", ["a:b"], at=at)
    ledger.flush()

    [row] = store.read_usage()
    assert (row.usage.requests, row.usage.first_seen, row.usage.last_seen) == (
        4,
        AT,
        AT + 9,
    )


def test_time_defaults_to_the_clock() -> None:
    """Without `at`, the injected clock gives the time."""
    store = MemoryStore()
    ledger = GrantLedger(store, clock=ManualClock(AT))
    ledger.record_allowed("991825827", None, ["a:b"])
    ledger.flush()

    assert store.read_usage()[0].usage.first_seen == AT


def test_refusals_count_by_reason() -> None:
    """Refusals of a verified consumer are counted per reason and scope."""
    store = MemoryStore()
    ledger = GrantLedger(store)
    ledger.record_refused("991825827", None, "insufficient_scope", "a:b", at=AT)
    ledger.record_refused("991825827", None, "insufficient_scope", "a:b", at=AT)
    ledger.flush()

    [row] = store.read_refusals()
    assert (row.key.reason, row.refusals) == ("insufficient_scope", 2)


def test_new_keys_past_the_bound_are_dropped_and_counted() -> None:
    """When full, new keys are dropped and counted; known keys still count."""
    metrics = Recorder()
    store = MemoryStore()
    ledger = GrantLedger(store, max_pending=2, metrics=metrics)
    for consumer in ("1", "2", "3", "4"):
        ledger.record_allowed(consumer, None, ["a:b"], at=AT)
    ledger.record_allowed("1", None, ["a:b"], at=AT)
    ledger.flush()

    assert ledger.dropped == 2
    assert _requests(store) == 3
    assert ("increment", "ledger_dropped", 1.0) in metrics.calls


def test_store_down_keeps_counts_until_it_is_back() -> None:
    """Counts survive failed flushes and are written once the store is back."""
    store = FlakyStore(failures=3)
    ledger = GrantLedger(store)
    for _ in range(3):
        ledger.record_allowed("991825827", None, ["a:b"], at=AT)
        assert ledger.flush() == 0
    ledger.record_allowed("991825827", None, ["a:b"], at=AT)

    assert ledger.flush() == 2
    assert _requests(store) == 4
    assert ledger.pending == 0


def test_lost_acknowledgement_does_not_double_count() -> None:
    """A batch committed but reported failed is not applied again on retry."""
    store = FlakyStore(failures=1, after_commit=True)
    ledger = GrantLedger(store)
    ledger.record_allowed("991825827", None, ["a:b"], at=AT)
    ledger.flush()
    ledger.record_allowed("991825827", None, ["a:b"], at=AT)
    ledger.flush()

    assert _requests(store) == 2


def test_failed_batch_counts_against_the_bound() -> None:
    """A batch waiting for a retry holds its place in the memory bound."""
    ledger = GrantLedger(FlakyStore(failures=5), max_pending=2)
    ledger.record_allowed("1", None, ["a:b"], at=AT)
    ledger.record_allowed("2", None, ["a:b"], at=AT)
    ledger.flush()
    ledger.record_allowed("3", None, ["a:b"], at=AT)

    assert (ledger.pending, ledger.dropped) == (2, 1)


def test_backoff_grows_and_is_capped() -> None:
    """After failures the periodic flush waits longer each time, up to the cap."""
    clock = ManualClock(AT)
    store = FlakyStore(failures=10)
    ledger = GrantLedger(store, flush_interval=5, max_backoff=12, clock=clock)
    ledger.record_allowed("1", None, ["a:b"], at=AT)
    tried_at = []
    for second in range(45):
        before = store.attempts
        ledger.flush_if_due()
        if store.attempts > before:
            tried_at.append(second)
        clock.advance(1)
    waits = [later - earlier for earlier, later in itertools.pairwise(tried_at)]

    assert waits == [5, 10, 12, 12]


def test_flush_reports_metrics() -> None:
    """A flush observes its duration and sets the pending gauge."""
    metrics = Recorder()
    ledger = GrantLedger(MemoryStore(), metrics=metrics)
    ledger.record_allowed("1", None, ["a:b"], at=AT)
    ledger.flush()

    names = {(kind, name) for kind, name, _ in metrics.calls}
    assert {("observe", "ledger_flush_seconds"), ("set", "ledger_pending")} <= names


def test_flush_error_is_counted() -> None:
    """A failed flush increments ledger_flush_errors."""
    metrics = Recorder()
    ledger = GrantLedger(FlakyStore(failures=1), metrics=metrics)
    ledger.record_allowed("1", None, ["a:b"], at=AT)
    ledger.flush()

    assert ("increment", "ledger_flush_errors", 1.0) in metrics.calls


def test_close_under_load_writes_every_accepted_count(store_url: str) -> None:
    """Threads recording while close runs: stored plus dropped equals recorded."""
    store = open_store(store_url)
    ledger = GrantLedger(store, flush_interval=0.01)
    ledger.start_thread()
    calls = [0] * 4
    go = threading.Event()

    def hammer(index: int) -> None:
        go.wait()
        for n in range(3_000):
            ledger.record_allowed(f"{index}", None, [f"s:{n % 50}"], at=AT)
            calls[index] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    go.set()
    while sum(calls) < 4_000:
        pass
    ledger.close()
    for thread in threads:
        thread.join()

    check = open_store(store_url)
    try:
        stored = sum(row.usage.requests for row in check.read_usage())
    finally:
        check.close()
    if store_url == "memory://":
        stored = _requests(store)  # type: ignore[arg-type]
    assert stored + ledger.dropped == sum(calls) == 12_000
    assert stored >= 4_000


def test_records_after_close_are_dropped() -> None:
    """A closed ledger counts late records as dropped."""
    ledger = GrantLedger(MemoryStore())
    ledger.close()
    ledger.record_allowed("1", None, ["a:b"], at=AT)

    assert ledger.dropped == 1


def test_async_lifespan_flushes_at_shutdown() -> None:
    """start() and aclose() in an event loop write the counts at shutdown."""
    store = MemoryStore()
    ledger = GrantLedger(store, flush_interval=60)

    async def lifespan() -> None:
        await ledger.start()
        ledger.record_allowed("1", None, ["a:b"], at=AT)
        await ledger.aclose()

    anyio.run(lifespan)

    assert _requests(store) == 1


def test_invalid_settings_are_refused() -> None:
    """A zero flush interval or bound is a programming error."""
    with pytest.raises(ValueError, match="positive"):
        GrantLedger(MemoryStore(), max_pending=0)


@pytest.mark.postgres
def test_dropped_connections_are_replaced(
    postgres_url: str, postgres_schema: str
) -> None:
    """After the server drops the pool's connections, the next flush still works."""
    import psycopg

    name = f"mpg-{postgres_schema}"
    url = f"{postgres_url}?schema={postgres_schema}&application_name={name}"
    ledger = GrantLedger(open_store(url))
    ledger.record_allowed("991825827", None, ["a:b"], at=AT)
    ledger.flush()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (name,),
        )
    ledger.record_allowed("991825827", None, ["a:b"], at=AT)
    ledger.flush()

    [row] = ledger.store.read_usage()
    assert row.usage.requests == 2
    ledger.close()


@pytest.mark.postgres
def test_unreachable_postgres_then_back_loses_nothing(
    postgres_url: str, postgres_schema: str
) -> None:
    """A flush to a closed port fails for real; the right server gets it once."""
    down = PostgresStore(
        "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1",
        schema=postgres_schema,
        timeout=0.5,
    )
    ledger = GrantLedger(down)
    ledger.record_allowed("991825827", None, ["a:b"], at=AT)
    ledger.record_refused("991825827", None, "consumer", at=AT)

    assert ledger.flush() == 0
    assert ledger.pending == 2
    down.close()
    ledger.store = open_store(f"{postgres_url}?schema={postgres_schema}")
    assert ledger.flush() == 2
    assert ledger.flush() == 0
    assert [row.usage.requests for row in ledger.store.read_usage()] == [1]
    ledger.close()
