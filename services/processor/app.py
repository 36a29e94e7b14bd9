"""The processor's faust app, composed: topics and tables, a sender over faust's producer,
three thin agents over plain-Python stages, and the timers.

Built by `build_app(settings, rules)`; nothing here is module-level state, and nothing is
connected or started until a worker runs the app (services/processor/worker.py).

At-least-once with no lost or repeated alert: each batch's outputs (signals, re-keyed
ticks, dead letters) are sent and acknowledged *before* the batch's state records, the
state records are acknowledged before the batch's events are acked (so before any offset
commit can cover them), and every state remembers the last source offset it holds. A
crash before the state write replays the batch and re-sends identical outputs (the
alerter drops repeated alert ids, the pair stage repeated source offsets); a crash after
it skips what state already has.
"""

from __future__ import annotations

import logging
import socket

import faust

from services.detection.rules import Rules
from services.processor.agents import add_agents, batch_handlers, forget_on_revocation
from services.processor.faust_compat.consumer import install_consumer
from services.processor.faust_compat.producer import install_producer
from services.processor.history_stage import HistoryStage
from services.processor.levels import LevelFeed
from services.processor.metrics import ProcessorMetrics
from services.processor.pair_stage import PairStage
from services.processor.readiness import Readiness
from services.processor.rewinds import Rewinds
from services.processor.sender import Sender
from services.processor.symbol_stage import SymbolStage
from services.processor.timers import add_timers, heartbeat_interval
from services.processor.topology import declare_topology
from services.runtime.settings import Settings

log = logging.getLogger("marketsignal.processor")

# No linger: it only delayed every batch's outputs and state writes (twice per batch on
# the tick-to-alert path). Batching happens anyway: a batch's sends are queued before the
# producer's sender task runs, and aiokafka keeps one produce request in flight per
# broker, so what is queued meanwhile goes in the next request together.
PRODUCER_LINGER_S = 0.0
PRODUCER_MAX_BATCH_BYTES = 1024 * 1024


def web_port_for(port: int, host: str = "127.0.0.1") -> int:
    """Faust's web server needs a real port (its setting refuses 0): 0 means any free
    one, picked here as the metrics servers pick theirs, and logged."""
    if port != 0:
        return port
    with socket.socket() as probe:
        probe.bind((host, 0))
        chosen = int(probe.getsockname()[1])
    log.info("faust web server on %s:%d (any free port)", host, chosen)
    return chosen


def configured_app(settings: Settings, web_port: int | None) -> faust.App:
    """A faust app with the processor's settings, and its consumer's commit rules."""
    app_id = settings.processor_consumer_group
    datadir = (settings.state_dir / app_id).resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        autodiscover=False,
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Standbys would hold copies the leader's timer must not touch; recovery from the
        # changelog is fast at this state size.
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=PRODUCER_LINGER_S,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.processor_session_timeout_s,
        broker_heartbeat_interval=settings.processor_session_timeout_s / 10,
        consumer_group_instance_id=settings.processor_instance_id,
        web_port=web_port_for(settings.processor_web_port if web_port is None else web_port),
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
    )
    # Faust's own commit rule can pass records nobody processed (services/processor/offsets.py).
    install_consumer(app, settings.processor_fetch_idle_wait_ms)
    # Idempotent sends: faust's own producer is idempotent only in transactions.
    install_producer(app)
    return app


def build_app(
    settings: Settings,
    rules: Rules,
    *,
    web_port: int | None = None,
    metrics: ProcessorMetrics | None = None,
    readiness: Readiness | None = None,
) -> faust.App:
    app = configured_app(settings, web_port)
    topology = declare_topology(app, settings)
    levels = LevelFeed(settings.kafka_bootstrap, settings.levels_topic)
    if metrics is not None:
        metrics.count_levels(levels.book.__len__)
    symbol_stage = SymbolStage(rules, settings.ticks_topic, settings.partitions, levels.book)
    pair_stage = PairStage(rules, topology.by_pair.get_topic_name())
    history_stage = HistoryStage(rules, settings.history_topic)
    sender = Sender(app)
    handlers = batch_handlers(
        topology,
        (symbol_stage, history_stage, pair_stage),
        sender.send,
        sender.send_batch,
        metrics,
    )
    rewinds = Rewinds(app, topology.sources)
    forget_on_revocation(app, rewinds, handlers)
    add_agents(app, topology, handlers, rewinds, levels.wait_ready)

    async def follow_levels() -> None:
        # Outside the consumer group, on every worker: see services/processor/levels.py.
        await levels.run()

    app.task(follow_levels)
    add_timers(
        app,
        rewinds=rewinds,
        by_pair=topology.by_pair,
        pair_subjects=pair_stage.subjects,
        heartbeat_s=heartbeat_interval(rules),
        readiness=readiness,
        levels_ready=levels.ready.is_set,
    )
    return app
