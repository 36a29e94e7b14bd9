"""A service's /metrics over HTTP: whole, or only the samples named by `name[]` (as
prometheus_client's own handler answers), which a poller of one counter relies on."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.runtime.observability import ObservabilityServer
from tests.support.services import free_port

pytestmark = pytest.mark.integration


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def test_metrics_whole_or_only_the_named_samples() -> None:
    registry = CollectorRegistry()
    ticks = Counter("demo_ticks", "ticks", ["stage"], registry=registry)
    ticks.labels("symbol").inc(3)
    Gauge("demo_lag", "lag", registry=registry).set(7)
    server = ObservabilityServer(registry, host="127.0.0.1", port=free_port()).start()
    try:
        whole = get(f"{server.url}/metrics")
        assert 'demo_ticks_total{stage="symbol"} 3.0' in whole
        assert "demo_lag 7.0" in whole
        one = get(f"{server.url}/metrics?name[]=demo_ticks_total")
        assert 'demo_ticks_total{stage="symbol"} 3.0' in one
        assert "demo_lag" not in one
        both = get(f"{server.url}/metrics?name[]=demo_ticks_total&name[]=demo_lag")
        assert "demo_lag 7.0" in both
        assert "demo_ticks_total" in both
    finally:
        server.stop()
