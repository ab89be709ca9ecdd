"""A real PostgreSQL restart while requests flow: none fails, no count is lost."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from maskinporten_guard import GrantLedger, Policy, Recorder, Settings, SyncGuard
from maskinporten_guard.policy import Rule, require
from maskinporten_guard.stores import open_store
from maskinporten_guard.testing import FakeMaskinporten, StaticKeys

READ = "demo:inspections.read"


class CountingMetrics:
    """Metrics that remember counters, to see the fault really hit."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = {}
        self.longest: dict[str, float] = {}

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        pass

    def observe(self, name: str, value: float, **labels: str) -> None:
        self.longest[name] = max(self.longest.get(name, 0.0), value)


def _restart_postgres() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            versions[-1],
            "main",
            "restart",
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )


@pytest.mark.postgres
def test_postgres_restart_under_load(postgres_url: str, postgres_schema: str) -> None:
    """Requests keep passing during a restart, and every count reaches the ledger."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        pytest.skip("needs a local PostgreSQL cluster managed by pg_ctlcluster")
    fake = FakeMaskinporten()
    store = open_store(f"{postgres_url}?schema={postgres_schema}&pool_timeout=2")
    metrics = CountingMetrics()
    ledger = GrantLedger(store, flush_interval=0.05, max_backoff=0.5, metrics=metrics)
    guard = SyncGuard(
        Policy([Rule("/inspections/{id}", require(all_of=[READ]))]),
        Settings.custom(fake.issuer),
        keys=StaticKeys(fake),
        recorder=Recorder(ledger=ledger),
    )
    tokens = [fake.mint(READ, consumer) for consumer in ("991825827", "889640782")]
    statuses: list[int] = []
    restarted = threading.Event()
    pause = threading.Event()

    def load() -> None:
        n = 0
        # Keep requests flowing through the whole restart and a little after.
        while not restarted.is_set() or n % 500:
            token = tokens[n % 2]
            decision = guard.check("GET", f"/inspections/{n}", [f"Bearer {token}"])
            statuses.append(decision.status)
            n += 1
            pause.wait(0.001)

    ledger.start_thread()
    loader = threading.Thread(target=load)
    loader.start()
    try:
        _restart_postgres()
    finally:
        restarted.set()
        loader.join(timeout=120)
    ledger.close()

    assert not loader.is_alive()
    assert len(statuses) >= 500
    assert set(statuses) == {200}
    # The restart really hit the ledger: a flush failed or waited it out.
    failed = metrics.counts.get("ledger_flush_errors", 0)
    assert failed >= 1 or metrics.longest.get("ledger_flush_seconds", 0) >= 0.5
    assert ledger.dropped == 0
    reader = open_store(f"{postgres_url}?schema={postgres_schema}")
    try:
        counted = sum(row.usage.requests for row in reader.read_usage())
    finally:
        reader.close()
    assert counted == len(statuses)
