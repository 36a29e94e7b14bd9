"""`marketsignal alert [--idle-exit S | --once]`: deliver signals from Kafka to Redis."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from types import FrameType

import redis
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from services.alerter.delivery import RedisDelivery
from services.alerter.metrics import AlertMetrics
from services.alerter.quarantine import KafkaQuarantine
from services.alerter.relay import AlertRelay, AlertStats
from services.cli.options import add_config_option
from services.runtime.heap import freeze_heap
from services.runtime.kafka_admin import (
    RECONNECT_BACKOFF_MAX_MS,
    BrokerUnavailableError,
    connecting,
    ensure_topics,
)
from services.runtime.lag import LagCollector
from services.runtime.observability import LOG_FORMAT, serve
from services.runtime.settings import Settings
from services.subscriptions.background import Background
from services.subscriptions.fanout_worker import FanoutWorker
from services.subscriptions.registry import SubscriptionRegistry

log = logging.getLogger("marketsignal.alerter")

# --once: the same as --idle-exit with this quiet period.
ONCE_IDLE_S = 2.0


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="exit once no signal has arrived for SECONDS (after joining the group)",
    )
    stop.add_argument(
        "--once",
        action="store_true",
        help=f"deliver what is on the topic, then exit (--idle-exit {ONCE_IDLE_S:g})",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="/metrics, /healthz, /readyz port (default: settings, 9103; 0: any free port)",
    )
    parser.add_argument(
        "--no-api",
        action="store_true",
        help="do not serve the subscriptions HTTP API (webhooks are still delivered)",
    )


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
) -> AlertStats:
    """Run the relay until `stop` or idle. Raises BrokerUnavailableError, redis.RedisError."""
    ensure_topics(
        settings, [settings.signals_topic, settings.signals_dlq_topic], settings.partitions
    )
    client = redis.Redis.from_url(settings.redis_url)
    try:
        client.ping()
        adopted = SubscriptionRegistry(client, settings).adopt_legacy()
        if adopted:
            log.warning("%d subscriptions of an earlier version now belong to the CLI", adopted)
        with connecting(settings):
            consumer = open_consumer(settings)
            quarantine = KafkaQuarantine(settings, lambda: datetime.now(UTC))
        # Subscriptions are served off the Kafka loop: the shared delivery queues each new
        # alert for the fan-out worker in the same atomic step (services/subscriptions/fanout.py).
        fanout = FanoutWorker(settings).start()
        try:
            relay = AlertRelay(
                consumer,
                RedisDelivery(client, settings, fanout=True),
                quarantine,
                batch_max=settings.alerter_batch_max,
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


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = Settings.for_config(args.config)
    settings.rules()  # a broken rules file should fail here, like every other command
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the current batch, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    idle = ONCE_IDLE_S if args.once else args.idle_exit
    registry = CollectorRegistry()
    metrics = AlertMetrics(registry)
    registry.register(
        LagCollector(
            settings.kafka_bootstrap,
            settings.alerter_consumer_group,
            [settings.signals_topic],
        )
    )
    port = settings.alerter_metrics_port if args.metrics_port is None else args.metrics_port
    serve("alert", registry, settings.metrics_host, port, metrics.ready)
    # Subscriptions API and webhook worker, on their own thread (docs/subscriptions.md).
    background = Background(settings, metrics, api=not args.no_api)
    try:
        background.start()
    except OSError as exc:
        # Alerts matter more than the API: deliver them (webhooks too) without it.
        log.error("subscriptions API not started (%s); delivering alerts without it", exc)
        background = Background(settings, metrics, api=False).start()
    try:
        stats = relay_signals(settings, stop, idle, metrics)
    except BrokerUnavailableError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(
            f"marketsignal: Redis at {settings.redis_location} is not reachable ({exc}); "
            "start the local stack with `make stack-up`",
            file=sys.stderr,
        )
        return 1
    except KafkaError as exc:
        print(f"marketsignal: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    finally:
        background.stop()
    print(stats.render(), file=sys.stderr)
    return 0
