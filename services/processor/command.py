"""`marketsignal process`: one faust-streaming worker (start several to share the work)."""

from __future__ import annotations

import argparse
import sys

import faust
from prometheus_client import CollectorRegistry

from schemas.pair_feed import PAIR_FEED_TOPIC
from services.cli import add_config_option
from services.kafka_admin import BrokerUnavailableError, ensure_topics
from services.lag import LagCollector
from services.observability import serve
from services.processor.app import Readiness, build_app
from services.processor.metrics import ProcessorMetrics, install_batch_sensor
from services.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument(
        "--web-port",
        type=int,
        default=None,
        help="Faust web port (default: settings, 6066; 0: any free port)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="/metrics, /healthz, /readyz port (default: settings, 9102; 0: any free port)",
    )
    parser.add_argument("--loglevel", default="info", help="worker log level")


def run(args: argparse.Namespace) -> int:
    if args.web_port is not None and not 0 <= args.web_port <= 65535:
        print(f"marketsignal: --web-port {args.web_port}: not a port (0-65535)", file=sys.stderr)
        return 2
    settings = Settings.for_config(args.config)
    rules = settings.rules()
    try:
        # by_pair too, though Faust would declare it: a worker that joins the group before
        # its metadata lists the topic is assigned none of its partitions, and nothing
        # corrects that until a metadata refresh (5 min): no divergence is evaluated until
        # then. Two workers starting together on a fresh Kafka 4.4.0 broker hit it (2 of 2 runs).
        ensure_topics(
            settings,
            [
                settings.ticks_topic,
                settings.dlq_topic,
                settings.signals_topic,
                settings.topic(PAIR_FEED_TOPIC),
                settings.history_topic,
            ],
            settings.partitions,
        )
    except BrokerUnavailableError as exc:
        print(f"marketsignal: {exc}", file=sys.stderr)
        return 1
    registry = CollectorRegistry()
    # A stalled leg holds its pair's or listing's ticks: watch every leg by default.
    watch = settings.watch_symbols or tuple(
        dict.fromkeys(
            [s for rule in rules.divergence for s in (rule.a, rule.b)]
            + [s for rule in rules.ah for s in rule.legs]
        )
    )
    metrics = ProcessorMetrics(registry, watch)
    readiness = Readiness()
    app = build_app(settings, rules, web_port=args.web_port, metrics=metrics, readiness=readiness)
    # faust's own sensor (messages, commit latency, rebalances, ...), in our registry, per
    # batch rather than per event; the fixed prefix keeps metric names independent of the
    # namespace and app id.
    install_batch_sensor(app, registry)
    registry.register(
        LagCollector(
            settings.kafka_bootstrap,
            settings.namespace + settings.processor_app_id,
            [settings.ticks_topic, settings.topic(PAIR_FEED_TOPIC), settings.history_topic],
        )
    )
    port = settings.processor_metrics_port if args.metrics_port is None else args.metrics_port
    serve("process", registry, settings.metrics_host, port, readiness.check)
    worker = faust.Worker(app, loglevel=args.loglevel)
    worker.execute_from_commandline()  # exits the process when the worker stops
    return 0
