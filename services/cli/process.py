"""`marketsignal process`: one faust-streaming worker (start several to share the work)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.pair_feed import PAIR_FEED_TOPIC
from services.cli.options import add_config_option
from services.processor.app import build_app
from services.processor.faust_compat import (
    BoundedStopWorker,
    changelog_topic_name,
    install_batch_sensor,
    leader_topic_name,
)
from services.processor.metrics import ProcessorMetrics
from services.processor.readiness import Readiness
from services.processor.tables import STATE_TABLES
from services.runtime.kafka_admin import BrokerUnavailableError, ensure_topics
from services.runtime.lag import LagCollector
from services.runtime.observability import serve
from services.runtime.settings import Settings


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
        # The pair feed, the history and the changelogs too, although Faust would create
        # some of them: a topic missing from the consumer's first metadata is left out of
        # the group's assignment until the next metadata refresh (5 min): no divergence,
        # or no state recovered, meanwhile (two workers on a fresh broker hit it).
        app_id = settings.processor_consumer_group
        changelogs = [changelog_topic_name(app_id, name) for name in STATE_TABLES]
        ensure_topics(
            settings,
            [
                settings.ticks_topic,
                settings.dlq_topic,
                settings.signals_topic,
                settings.topic(PAIR_FEED_TOPIC),
                settings.history_topic,
                *changelogs,
            ],
            settings.partitions,
            configs={name: {"cleanup.policy": "compact"} for name in changelogs},
        )
        # Faust's leader election topic: whoever holds its one partition runs the timers.
        ensure_topics(settings, [leader_topic_name(app_id)], 1)
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
            settings.processor_consumer_group,
            [settings.ticks_topic, settings.topic(PAIR_FEED_TOPIC), settings.history_topic],
        )
    )
    port = settings.processor_metrics_port if args.metrics_port is None else args.metrics_port
    serve("process", registry, settings.metrics_host, port, readiness.check)
    worker: Any = BoundedStopWorker(app, loglevel=args.loglevel)
    # No terminal spinner: at a log level of WARN or above faust keeps one and, for it,
    # sets the root logger to DEBUG, so every debug call of faust and aiokafka (one per
    # produced record) builds a LogRecord that no handler prints: ~10% of a busy worker.
    worker.spinner = None
    worker.grace_s = settings.processor_stop_grace_s
    sys.setswitchinterval(settings.processor_gil_switch_ms / 1000)
    worker.execute_from_commandline()  # exits the process when the worker stops
    return 0
