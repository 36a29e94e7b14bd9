"""The alerter, assembled: signals from Kafka delivered to Redis, with the subscriptions beside.

`run_alerter` is the whole process bar argument parsing and signal handling: metrics and
health served, the subscriptions' API and webhook worker started, then `relay_signals`
until stopped or idle. `relay_signals` is the Kafka-to-Redis part alone, with the fan-out
worker the delivery hands new alerts to.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from services.alerter.delivery import RedisDelivery
from services.alerter.metrics import AlertMetrics
from services.alerter.quarantine import KafkaQuarantine
from services.alerter.relay import AlertRelay, AlertStats
from services.runtime import redis_client
from services.runtime.heap import freeze_heap
from services.runtime.kafka_admin import RECONNECT_BACKOFF_MAX_MS, connecting, ensure_topics
from services.runtime.lag import LagCollector
from services.runtime.observability import serve
from services.runtime.settings import Settings
from services.subscriptions.service import SubscriptionMetrics, SubscriptionService

log = logging.getLogger("marketsignal.alerter")


def open_consumer(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(
        settings.signals_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        bootstrap_timeout_ms=settings.kafka_bootstrap_timeout_ms,
        client_id=f"{settings.namespace}marketsignal-alerter",
        group_id=settings.alerter_consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.alerter_session_timeout_ms,
        heartbeat_interval_ms=max(settings.alerter_session_timeout_ms // 5, 1000),
        # Static membership: a restart under the same id gets its partitions back at
        # once instead of waiting for the session timeout to evict the dead member.
        group_instance_id=settings.alerter_instance_id,
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
    )


def relay_signals(
    settings: Settings,
    stop: threading.Event,
    idle_exit_s: float | None,
    metrics: AlertMetrics | None = None,
    subscriptions: SubscriptionService | None = None,
) -> AlertStats:
    """Run the relay until `stop` or idle. Raises BrokerUnavailableError, redis.RedisError."""
    if subscriptions is None:
        subscriptions = SubscriptionService(settings)
    ensure_topics(
        settings, [settings.signals_topic, settings.signals_dlq_topic], settings.partitions
    )
    client = redis_client.connect(settings)
    try:
        client.ping()
        adopted = subscriptions.adopt_legacy(client)
        if adopted:
            log.warning("%d subscriptions of an earlier version now belong to the CLI", adopted)
        with connecting(settings):
            consumer = open_consumer(settings)
            quarantine = KafkaQuarantine(settings, lambda: datetime.now(UTC))
        # Subscriptions are served off the Kafka loop: the delivery hands each new alert
        # to the fan-out worker's queue in the same atomic step as its dedupe claim.
        fanout = subscriptions.start_fanout()
        try:
            relay = AlertRelay(
                consumer,
                RedisDelivery(client, settings, queue=subscriptions.queue),
                quarantine,
                batch_max=settings.alerter_batch_max,
                commit_interval_s=settings.alerter_commit_interval_ms / 1000,
                metrics=metrics,
            )
            freeze_heap()
            return relay.run(stop, idle_exit_s)
        finally:
            consumer.close(autocommit=False)
            quarantine.close()
            fanout.stop()
    finally:
        client.close()


def run_alerter(
    settings: Settings,
    stop: threading.Event,
    *,
    idle_exit_s: float | None = None,
    metrics_port: int | None = None,
    api: bool = True,
) -> AlertStats:
    """The alerter process until `stop` or idle: what `marketsignal alert` runs.

    `metrics_port`: None for the settings' port, 0 for any free one. `api`: whether to
    serve the subscriptions' HTTP API (webhooks are delivered either way). Raises
    BrokerUnavailableError, redis.RedisError or kafka.errors.KafkaError when Kafka or
    Redis cannot be used.
    """
    registry = CollectorRegistry()
    metrics = AlertMetrics(registry)
    subscriptions = SubscriptionService(
        settings, SubscriptionMetrics(registry, delivered=metrics.delivered)
    )
    registry.register(
        LagCollector(
            settings.kafka_bootstrap,
            settings.alerter_consumer_group,
            [settings.signals_topic],
        )
    )
    port = settings.alerter_metrics_port if metrics_port is None else metrics_port
    serve("alert", registry, settings.metrics_host, port, metrics.ready)
    try:
        background = subscriptions.start_background(api=api)
    except OSError as exc:
        # Alerts matter more than the API: deliver them (webhooks too) without it.
        log.error("subscriptions API not started (%s); delivering alerts without it", exc)
        background = subscriptions.start_background(api=False)
    try:
        return relay_signals(settings, stop, idle_exit_s, metrics, subscriptions)
    finally:
        background.stop()
