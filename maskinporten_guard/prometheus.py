"""
`Metrics` on prometheus_client, for operators who scrape Prometheus.

Needs the `prometheus` extra. Each metric is created on first use, named
`maskinporten_guard_<name>` with the label names of that first call; use the
same label names for a name every time (prometheus_client refuses others).
Counters get the `_total` suffix in the exposition, as prometheus_client
writes them.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import ConfigurationError

__all__ = ["PREFIX", "PrometheusMetrics"]

PREFIX = "maskinporten_guard_"


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigurationError(
            "PrometheusMetrics needs prometheus-client; install it with "
            "`pip install maskinporten-guard[prometheus]`"
        ) from exc

    return prometheus_client


class PrometheusMetrics:
    """
    A `Metrics` hook that feeds counters, gauges and histograms. Thread-safe.
    """

    def __init__(self, registry: Any | None = None) -> None:
        """
        Args:
            registry: the `CollectorRegistry` to register with; a new one when
                None (expose it with `registry` and `generate_latest`).
        """
        self._client = _client()
        self.registry = registry or self._client.CollectorRegistry()
        self._metrics: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _metric(self, kind: str, name: str, labels: dict[str, str]) -> Any:
        metric = self._metrics.get(name)
        if metric is None:
            with self._lock:
                metric = self._metrics.get(name)
                if metric is None:
                    factory = getattr(self._client, kind)
                    metric = factory(
                        PREFIX + name,
                        name.replace("_", " "),
                        labelnames=sorted(labels),
                        registry=self.registry,
                    )
                    self._metrics[name] = metric

        return metric.labels(**labels) if labels else metric

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add `value` to the counter `name`."""
        self._metric("Counter", name, labels).inc(value)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set the gauge `name` to `value`."""
        self._metric("Gauge", name, labels).set(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record `value` in the histogram `name`."""
        self._metric("Histogram", name, labels).observe(value)
