"""`marketsignal ingest FILE [--rate N | --speed X]`: replay a tick file into Kafka."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from services.cli import add_config_option
from services.feed import FeedError
from services.ingestor.ingest import ingest_file
from services.ingestor.metrics import IngestMetrics, MeteredSink
from services.ingestor.pacing import Pacer
from services.ingestor.publish import Publisher
from services.ingestor.screening import Screener
from services.kafka_admin import BrokerUnavailableError, ensure_topics
from services.observability import ReadyFlag, serve
from services.settings import Settings


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="ticks as CSV (with a header) or JSON Lines")
    add_config_option(parser)
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=_positive, help="publish at most N ticks per second")
    pace.add_argument(
        "--speed", type=_positive, help="replay at X times event-time speed (ts gaps / X)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics, /healthz, /readyz here while the replay runs "
        "(default: $MARKETSIGNAL_INGESTOR_METRICS_PORT, 9101; 0: any free port; -1: none)",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Broker trouble is reported once, below, as a clear message: not as retry chatter.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    settings = Settings.for_config(args.config)
    rules = settings.rules()
    path: Path = args.file
    if not path.is_file():
        print(f"marketsignal: {path}: no such file", file=sys.stderr)
        return 2
    screener = Screener(
        rules.exchange_zones(),
        rules.ticks.allowed_lateness_s,
        str(path),
        lambda: datetime.now(UTC),
    )
    pacer = Pacer(rate=args.rate, speed=args.speed)
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    port = settings.ingestor_metrics_port if args.metrics_port is None else args.metrics_port
    # Ready once the producer is connected; a batch job has nothing else to wait for.
    ready = ReadyFlag("connecting to Kafka")
    server = serve("ingest", registry, settings.metrics_host, port, ready) if port >= 0 else None
    try:
        return _replay(settings, path, screener, pacer, metrics, ready)
    finally:
        if server is not None:
            server.stop()


def _replay(
    settings: Settings,
    path: Path,
    screener: Screener,
    pacer: Pacer,
    metrics: IngestMetrics,
    ready: ReadyFlag,
) -> int:
    started = time.perf_counter()
    try:
        ensure_topics(
            settings,
            [settings.ticks_topic, settings.dlq_topic, settings.signals_topic],
            settings.partitions,
        )
        publisher = Publisher(settings, metrics)
        ready.set(True, "producer connected")
    except BrokerUnavailableError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 1
    try:
        summary = ingest_file(path, screener, pacer, MeteredSink(publisher, metrics))
        publisher.flush()
    except FeedError as exc:
        print(f"marketsignal: {path}: {exc}", file=sys.stderr)
        publisher.close()
        return 2
    except KafkaError as exc:
        print(f"marketsignal: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        publisher.close(timeout_s=1.0)
        return 1
    except KeyboardInterrupt:
        # What was sent is in the producer's buffer: deliver it, then stop.
        publisher.flush()
        publisher.close()
        print("marketsignal: interrupted", file=sys.stderr)
        return 130
    publisher.close()
    summary.failed = publisher.failed
    # Wall time from connect to last acknowledgement: what a user waits for.
    summary.seconds = time.perf_counter() - started
    print(summary.render(), file=sys.stderr)
    if publisher.failed:
        print(f"marketsignal: delivery failed: {publisher.first_error}", file=sys.stderr)
        return 1
    return 0
