"""One processor worker assembled and run: topics created, metrics served, the faust app
built and handed to faust's Worker.

`marketsignal process` (services/cli/process.py) parses its arguments and calls `run`.
"""

from __future__ import annotations

import sys
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.pair_feed import PAIR_FEED_TOPIC
from services.detection.rules import Rules
from services.processor.app import build_app
from services.processor.faust_compat.changelog import changelog_topic_name, leader_topic_name
from services.processor.faust_compat.sensor import install_batch_sensor
from services.processor.faust_compat.shutdown import BoundedStopWorker
from services.processor.metrics import ProcessorMetrics
from services.processor.readiness import Readiness
from services.processor.tables import STATE_TABLES
from services.processor.topology import source_topics, topic_names
from services.runtime.heap import collect_less
from services.runtime.kafka_admin import ensure_levels_topic, ensure_topics
from services.runtime.lag import LagCollector
from services.runtime.observability import all_of, serve
from services.runtime.settings import Settings
from services.runtime.write_health import WriteHealth


def create_topics(settings: Settings) -> None:
    """Create every topic the worker reads or writes, faust's own included; raises
    `BrokerUnavailableError` when the broker cannot be reached.

    The pair feed, the history and the changelogs too, although Faust would create some
    of them: a topic missing from the consumer's first metadata is left out of the
    group's assignment until the next metadata refresh (5 min), and nothing on it is
    processed meanwhile.
    """
    app_id = settings.processor_consumer_group
    changelogs = changelog_topics(settings)
    ensure_topics(
        settings,
        [*topic_names(settings), *changelogs],
        settings.partitions,
        configs={name: {"cleanup.policy": "compact"} for name in changelogs},
    )
    ensure_topics(settings, [leader_topic_name(app_id)], 1)
    # Read outside the group (services/processor/levels.py): created compacted, as the
    # API creates it, so a worker started before any level was set can follow it.
    ensure_levels_topic(settings)


def changelog_topics(settings: Settings) -> list[str]:
    """The changelog topic of each of the worker's state tables."""
    app_id = settings.processor_consumer_group
    return [changelog_topic_name(app_id, name) for name in STATE_TABLES]


def output_topics(settings: Settings) -> list[str]:
    """The topics the worker writes: signals, its changelogs and its pair feed."""
    return [settings.signals_topic, *changelog_topics(settings), settings.topic(PAIR_FEED_TOPIC)]


def watched_symbols(settings: Settings, rules: Rules) -> tuple[str, ...]:
    """The symbols whose feed staleness is reported: the settings' list, else every leg
    of a pair or listing (a stalled leg holds its pair's or listing's ticks)."""
    return settings.watch_symbols or tuple(
        dict.fromkeys(
            [s for rule in rules.divergence for s in (rule.a, rule.b)]
            + [s for rule in rules.ah for s in rule.legs]
        )
    )


def run(
    settings: Settings,
    *,
    web_port: int | None = None,
    metrics_port: int | None = None,
    loglevel: str = "info",
) -> int:
    """Run one worker until it is stopped; faust exits the process then.

    `web_port`, `metrics_port`: overrides of the settings' ports (0: any free port).
    Raises `BrokerUnavailableError` before anything starts if the broker is unreachable.
    """
    rules = settings.rules()
    create_topics(settings)
    registry = CollectorRegistry()
    metrics = ProcessorMetrics(registry, watched_symbols(settings, rules))
    readiness = Readiness()
    app = build_app(settings, rules, web_port=web_port, metrics=metrics, readiness=readiness)
    install_batch_sensor(app, registry)
    registry.register(
        LagCollector(
            settings.kafka_bootstrap,
            settings.processor_consumer_group,
            source_topics(settings),
        )
    )
    port = settings.processor_metrics_port if metrics_port is None else metrics_port
    # Whether the cluster takes the worker's outputs (signals, changelogs): not ready,
    # with the reason, while it does not.
    health = WriteHealth(settings, output_topics(settings), registry)
    health.start()
    serve("process", registry, settings.metrics_host, port, all_of(readiness.check, health))
    worker: Any = BoundedStopWorker(app, loglevel=loglevel)
    # No terminal spinner: at a log level of WARN or above faust keeps one and, for it,
    # sets the root logger to DEBUG, so every debug call of faust and aiokafka (one per
    # produced record) builds a LogRecord that no handler prints.
    worker.spinner = None
    worker.grace_s = settings.processor_stop_grace_s
    # faust's consumer thread hands fetched records to the event loop and must retake
    # the GIL to do so: a shorter switch interval lets it in sooner (docs/processor.md).
    sys.setswitchinterval(settings.processor_gil_switch_ms / 1000)
    collect_less(settings.processor_gc_threshold)  # the heap is frozen once ready
    worker.execute_from_commandline()  # exits the process when the worker stops
    return 0
