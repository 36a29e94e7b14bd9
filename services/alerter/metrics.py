"""The alerter's metrics and readiness, in a registry its `run` creates and passes down."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from schemas.alert import Alert
from schemas.common import header_int
from schemas.topics import INGESTED_AT_HEADER
from services.runtime.observability import ReadyFlag

# Tick ingest (the ingestor's Kafka timestamp) to alert delivery (the Redis script
# returned), in seconds with millisecond-scale buckets. Why these: a healthy pipeline
# adds the ingestor's linger (5 ms), the processor's batch (what has arrived, no timer)
# and its producer's linger (2 ms), a Kafka hop each way and the alerter's poll, so
# alerts land between a few ms and ~1 s and need fine buckets there; a backlog or a
# rebalance pushes them to seconds or minutes, which the coarse tail keeps measurable
# instead of all in +Inf. 2.5 s, the
# TickToAlertLatencyHigh threshold, is a bucket bound, so the p99 near it is exact rather
# than interpolated. Prometheus' default buckets (5 ms to 10 s, few below 100 ms) would
# lump every healthy alert into three buckets.
LATENCY_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)

# Where the alerter's script puts an alert, both at once. The family's `webhook` channel
# is counted by the subscriptions (services/subscriptions/metrics.py).
CHANNELS = ("stream", "pubsub")


def _ingested_s(record: Any) -> float | None:
    ms = header_int(getattr(record, "headers", None), INGESTED_AT_HEADER)
    return None if ms is None else ms / 1000.0


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.ready = ReadyFlag("connecting to Kafka and Redis")
        self.delivered = Counter(
            "marketsignal_alerts_delivered",
            "Alerts delivered for the first time, by channel",
            ["channel"],
            registry=registry,
        )
        for channel in CHANNELS:
            self.delivered.labels(channel)
        self.duplicates = Counter(
            "marketsignal_alert_duplicates_suppressed",
            "Signals whose alert was already delivered (a replay or a restart)",
            registry=registry,
        )
        self.invalid = Counter(
            "marketsignal_alert_invalid_signals",
            "Values on the signals topic that are not signals (sent to signals.dlq)",
            registry=registry,
        )
        self.redis_errors = Counter(
            "marketsignal_alert_redis_errors",
            "Redis errors while delivering (the batch is retried, nothing committed past it)",
            registry=registry,
        )
        self.kafka_errors = Counter(
            "marketsignal_alert_kafka_errors",
            "Retriable Kafka errors while polling signals (the poll is retried after a backoff)",
            registry=registry,
        )
        self.latency = Histogram(
            "marketsignal_tick_to_alert_latency_seconds",
            "Time from a tick's ingest to the delivery of the alert it caused",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )

    def batch(
        self,
        records: Sequence[Any],
        alerts: Sequence[Alert],
        delivered: Sequence[bool],
        invalid: int,
    ) -> None:
        """After Redis took a batch: counts, and the latency of each alert delivered now."""
        self.ready.set(True, "consuming signals, Redis reachable")
        new = sum(delivered)
        for channel in CHANNELS:
            self.delivered.labels(channel).inc(new)
        self.duplicates.inc(len(delivered) - new)
        self.invalid.inc(invalid)
        if not new:
            return
        # alert_id is by contract the SHA-256 of the exact bytes on `signals`, so the
        # record behind each alert is found without re-serialising anything.
        origins: dict[str, float] = {}
        for record in records:
            at = _ingested_s(record)
            if at is not None and record.value is not None:
                origins[hashlib.sha256(record.value).hexdigest()[:32]] = at
        now = self.clock()
        for alert, fresh in zip(alerts, delivered, strict=True):
            at = origins.get(alert.alert_id) if fresh else None
            if at is not None:
                self.latency.observe(max(0.0, now - at))

    def kafka_failed(self, exc: Exception) -> None:
        self.kafka_errors.inc()
        self.ready.set(False, f"Kafka unavailable: {exc}")

    def redis_failed(self, exc: Exception) -> None:
        self.redis_errors.inc()
        self.ready.set(False, f"Redis unavailable: {exc}")
