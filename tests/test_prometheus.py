from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from maskinporten_guard.clock import ManualClock
from maskinporten_guard.ledger import GrantLedger
from maskinporten_guard.metrics import Metrics
from maskinporten_guard.prometheus import PrometheusMetrics
from maskinporten_guard.stores import MemoryStore


def test_counter_with_labels_is_exposed() -> None:
    """An increment with labels shows up as a prefixed _total sample."""
    metrics = PrometheusMetrics()
    metrics.increment("decisions", outcome="deny", reason="expired")
    metrics.increment("decisions", outcome="deny", reason="expired")

    value = metrics.registry.get_sample_value(
        "maskinporten_guard_decisions_total", {"outcome": "deny", "reason": "expired"}
    )
    assert value == 2.0


def test_gauge_and_histogram() -> None:
    """set() feeds a gauge and observe() a histogram."""
    metrics = PrometheusMetrics()
    metrics.set("ledger_pending", 7)
    metrics.observe("ledger_flush_seconds", 0.25)

    registry = metrics.registry
    assert registry.get_sample_value("maskinporten_guard_ledger_pending") == 7
    assert (
        registry.get_sample_value("maskinporten_guard_ledger_flush_seconds_sum") == 0.25
    )


def test_uses_a_given_registry() -> None:
    """A registry passed in is the one the metrics land in."""
    registry = CollectorRegistry()
    metrics: Metrics = PrometheusMetrics(registry)
    metrics.increment("key_fetches")

    assert b"maskinporten_guard_key_fetches_total 1.0" in generate_latest(registry)


def test_ledger_reports_through_prometheus() -> None:
    """The ledger's flush metrics arrive in Prometheus."""
    metrics = PrometheusMetrics()
    ledger = GrantLedger(MemoryStore(), clock=ManualClock(), metrics=metrics)
    ledger.record_allowed("991825827", None, ["a:b"])
    ledger.flush()

    count = "maskinporten_guard_ledger_flush_seconds_count"
    assert metrics.registry.get_sample_value(count) == 1.0
