"""The faust-streaming app: thin agents that move records between topics, tables and stages.

Built by `build_app(settings, rules)`; nothing here is module-level state.

At-least-once with no lost or repeated alert: each batch's outputs (signals, re-keyed
ticks, dead letters) are sent and acknowledged *before* the batch's state records, the
state records are acknowledged before the batch's events are acked (so before any offset
commit can cover them), and every state remembers the last source offset it holds. A
crash before the state write replays the batch and re-sends identical outputs (the
alerter drops repeated alert ids, the pair stage repeated source offsets); a crash after
it skips what state already has.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import faust

from schemas.common import header_int
from schemas.pair_feed import PAIR_FEED_TOPIC, Heartbeat
from schemas.topics import INGESTED_AT_HEADER
from services.detection.rules import Rules
from services.processor.batches import Batches, unacked_unless_done
from services.processor.faust_compat import aiokafka_producer, install_consumer
from services.processor.handler import BatchHandler, Headers, OutputTopics
from services.processor.history_stage import HistoryStage
from services.processor.metrics import ProcessorMetrics
from services.processor.outputs import Outputs, Record
from services.processor.pair_stage import PairStage
from services.processor.readiness import REFRESH_S, Readiness, recovered
from services.processor.rewinds import REWIND_RETRY_S, Rewinds
from services.processor.symbol_stage import SymbolStage
from services.processor.tables import STATE_TABLES, ChangelogState, state_table
from services.runtime.heap import freeze_heap
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


def heartbeat_interval(rules: Rules) -> float:
    waits = [rule.max_wait_s for rule in rules.divergence]
    waits += [rule.max_wait_s for rule in rules.ah]
    waits = waits or [2.0]
    return min(max(min(waits) / 4, 0.1), 1.0)


def ingested_at(message: Any) -> int | None:
    """The tick's ingest time (epoch ms): our header if set, else the Kafka timestamp."""
    ms = header_int(message.headers, INGESTED_AT_HEADER)
    if ms is not None:
        return ms
    timestamp = message.timestamp  # seconds (float), as faust converts it
    return round(timestamp * 1000) if timestamp is not None else None


def build_app(
    settings: Settings,
    rules: Rules,
    *,
    web_port: int | None = None,
    metrics: ProcessorMetrics | None = None,
    readiness: Readiness | None = None,
) -> faust.App:
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
    install_consumer(app)

    def raw_topic(name: str, *, internal: bool = False) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            internal=internal,
        )

    ticks = raw_topic(settings.ticks_topic)
    by_pair = raw_topic(settings.topic(PAIR_FEED_TOPIC), internal=True)
    history = raw_topic(settings.history_topic)
    signals_topic, dlq_topic = settings.signals_topic, settings.dlq_topic
    by_pair_topic = by_pair.get_topic_name()

    symbol_table, pair_table = (
        state_table(app, name, settings.partitions) for name in STATE_TABLES
    )
    symbol_stage = SymbolStage(rules, settings.ticks_topic, settings.partitions)
    pair_stage = PairStage(rules, settings.topic(PAIR_FEED_TOPIC))
    history_stage = HistoryStage(rules, settings.history_topic)

    async def send(
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None,
        timestamp: float | None,
        headers: Headers,
    ) -> Awaitable[Any]:
        # Straight to faust's producer, awaited together by the handler: sent now and
        # acknowledged before it writes the tables. (Topic.send without force would attach
        # them to the current event and publish them only at its commit, which this
        # batch's own await would then wait for forever; with force it adds a sensor call
        # and a PendingMessage per record.)
        return cast(
            Awaitable[Any],
            await app.producer.send(topic, key, value, partition, timestamp, headers),
        )

    async def send_batch(
        topic: str, partition: int, records: list[tuple[bytes, bytes]]
    ) -> Awaitable[Any]:
        # aiokafka's batch API on faust's own producer (the same connection, queue and
        # order as every other send): one future per changelog partition, not per key.
        producer = aiokafka_producer(app)
        acks: list[Awaitable[Any]] = []
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # an empty one takes any
        acks.append(await producer.send_batch(batch, topic, partition=partition))
        return asyncio.gather(*acks)

    outputs = OutputTopics(signals_topic, by_pair_topic, dlq_topic)
    symbol_state = ChangelogState(symbol_table, send_batch)

    def observe_symbols(_batch: list[Record], out: Outputs, elapsed: float) -> None:
        if metrics is not None:
            metrics.batch("symbol", out.ticks, elapsed, out.evaluated, out.signals, out.dead)
            # Bundles have no key: the symbols are those whose state moved.
            metrics.staleness.seen(out.states)

    def observe_history(_batch: list[Record], out: Outputs, _elapsed: float) -> None:
        if metrics is not None:
            metrics.history(out.bars, out.dead)

    def observe_pairs(batch: list[Record], out: Outputs, elapsed: float) -> None:
        if metrics is not None:
            metrics.batch("pair", len(batch), elapsed, out.evaluated, out.signals, out.dead)
            metrics.buffers(pair_stage.pending())

    # The tick and history agents share the symbol table: they share a lock from reading
    # states to writing them back, so neither overwrites the other's merge.
    symbol_lock = asyncio.Lock()
    handlers = (
        BatchHandler(
            symbol_stage, send, symbol_state, outputs, lock=symbol_lock, observe=observe_symbols
        ),
        BatchHandler(
            history_stage, send, symbol_state, outputs, lock=symbol_lock, observe=observe_history
        ),
        BatchHandler(
            pair_stage, send, ChangelogState(pair_table, send_batch), outputs, observe=observe_pairs
        ),
    )
    symbol_handler, history_handler, pair_handler = handlers

    rewinds = Rewinds(app, [settings.ticks_topic, by_pair_topic, settings.history_topic])

    @app.on_partitions_revoked.connect
    def forget_positions(_sender: Any, /, *_args: Any, signal: Any, **_kwargs: Any) -> None:
        rewinds.forget()
        # Trackers cached for keys of partitions this worker may have lost: without this
        # the caches would only grow as partitions move between workers.
        for handler in handlers:
            handler.revoked()

    @app.timer(interval=REWIND_RETRY_S)  # type: ignore[untyped-decorator]
    async def retry_rewinds() -> None:
        await rewinds.retry()

    def records(events: Sequence[Any]) -> list[Record]:
        return [
            Record(
                e.message.key,
                e.message.value or b"",  # a tombstone from some other client: malformed
                e.message.partition,
                e.message.offset,
                ingested_at(e.message),
            )
            for e in events
        ]

    def batch_agent(topic: faust.TopicT, name: str, handler: BatchHandler) -> None:
        source = topic.get_topic_name()
        continuity = rewinds.continuity[source]

        async def agent(stream: faust.StreamT[Any]) -> None:
            async for events in Batches(app, stream):
                with unacked_unless_done(events, continuity):
                    kept = await rewinds.without_gaps(events, source)
                    await handler.handle(records(kept))

        app.agent(topic, name=name, concurrency=1)(agent)

    batch_agent(ticks, "records", symbol_handler)
    batch_agent(history, "history", history_handler)
    batch_agent(by_pair, "divergence", pair_handler)

    heartbeat = Heartbeat().model_dump_json().encode()

    @app.timer(interval=heartbeat_interval(rules), on_leader=True)  # type: ignore[untyped-decorator]
    async def release_held_ticks() -> None:
        # Through the topic, not a direct table poke: the worker owning each pair's
        # partition handles it, in order with that pair's ticks.
        for key in pair_stage.subjects():
            await by_pair.send(key=key.encode(), value=heartbeat)

    frozen = False

    @app.timer(interval=REFRESH_S)  # type: ignore[untyped-decorator]
    async def freeze_after_recovery() -> None:
        # Once, when the tables are recovered: the bulk of what the worker will ever hold
        # is alive by then (services/runtime/heap.py).
        nonlocal frozen
        if not frozen and not app.rebalancing and recovered(app):
            frozen = True
            log.info("%d start-up objects frozen out of garbage collection", freeze_heap())

    if readiness is not None:
        probe = readiness

        @app.timer(interval=REFRESH_S)  # type: ignore[untyped-decorator]
        async def refresh_readiness() -> None:
            probe.refresh(app)

    return app
