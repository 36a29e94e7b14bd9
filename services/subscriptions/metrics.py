"""The subscriptions' metrics, in the registry of the process that hosts them (the alerter).

The names are the ones dashboards and alert rules in deploy/ query, so they do not change.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class SubscriptionMetrics:
    """Webhook outcomes.

    Webhook deliveries are one channel (`webhook`) of the host's
    `marketsignal_alerts_delivered` family, whose other channels the host counts itself;
    a family is registered once per registry, so the host passes it in.
    """

    def __init__(self, registry: CollectorRegistry, delivered: Counter) -> None:
        self.webhook_delivered = delivered.labels("webhook")
        self.webhook_failures = Counter(
            "marketsignal_alert_webhook_failures",
            "Webhook deliveries that failed",
            registry=registry,
        )
