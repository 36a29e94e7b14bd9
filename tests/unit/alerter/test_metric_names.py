"""The alerter process's metric names: dashboards and alert rules in deploy/ query them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from services.alerter.metrics import AlertMetrics
from services.subscriptions.metrics import SubscriptionMetrics


def _exposed(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_the_alerter_and_its_subscriptions_export_the_names_deploy_queries() -> None:
    registry = CollectorRegistry()
    alerts = AlertMetrics(registry)
    SubscriptionMetrics(registry, delivered=alerts.delivered)
    text = _exposed(registry)
    for channel in ("stream", "pubsub", "webhook"):
        assert f'marketsignal_alerts_delivered_total{{channel="{channel}"}} 0.0' in text
    for name in (
        "marketsignal_alert_duplicates_suppressed_total",
        "marketsignal_alert_invalid_signals_total",
        "marketsignal_alert_webhook_failures_total",
        "marketsignal_alert_redis_errors_total",
        "marketsignal_alert_kafka_errors_total",
        "marketsignal_tick_to_alert_latency_seconds_bucket",
    ):
        assert f"\n{name}" in text, name
    # One family per name: a second registration would be refused, a second HELP invalid.
    assert text.count("# HELP marketsignal_alerts_delivered_total ") == 1


def test_webhook_outcomes_count_under_the_shared_family() -> None:
    registry = CollectorRegistry()
    alerts = AlertMetrics(registry)
    subs = SubscriptionMetrics(registry, delivered=alerts.delivered)
    subs.webhook_delivered.inc()
    subs.webhook_failures.inc(2)
    text = _exposed(registry)
    assert 'marketsignal_alerts_delivered_total{channel="webhook"} 1.0' in text
    assert 'marketsignal_alerts_delivered_total{channel="stream"} 0.0' in text
    assert "marketsignal_alert_webhook_failures_total 2.0" in text
