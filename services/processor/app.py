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
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import faust
import orjson
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP

from schemas.pair_feed import PAIR_FEED_TOPIC, Heartbeat
from schemas.topics import DLQ_REASON_HEADER, INGESTED_AT_HEADER
from services.detection.rules import Rules
from services.processor.continuity import Continuity
from services.processor.metrics import ProcessorMetrics
from services.processor.offsets import install as install_contiguous_commits
from services.processor.offsets import processed
from services.processor.stages import HistoryStage, Outputs, PairStage, Record, SymbolStage
from services.runtime.settings import Settings

log = logging.getLogger("marketsignal.processor")

# Batches amortise table writes: a symbol's state is written once per batch, not per tick.
# The changelog-backed tables; `marketsignal process` creates their changelog topics
# ({app id}-{name}-changelog, compacted) before the worker starts.
STATE_TABLES = ("symbol-state", "pair-state")

BATCH_MAX = 2000
# A record may be a bundle of many ticks: a batch also ends at this many value bytes
# (about 10k ticks), so its outputs and state writes stay small and a rebalance's wait
# for its ack stays short.
BATCH_MAX_BYTES = 1024 * 1024
# The longest a batch waits for the rest of a partition it was told exists (`Batches`).
BATCH_MAX_WAIT_S = 0.25
# The outputs of a batch go out together and are awaited together: a few ms of linger
# puts them in a few large produce requests instead of one per partition and send.
PRODUCER_LINGER_S = 0.002
# How long a partition sought back to a missing record may wait for it before the seek
# is repeated (services/processor/continuity.py).
REWIND_RETRY_S = 2.0
PRODUCER_MAX_BATCH_BYTES = 1024 * 1024


class StateTable(faust.Table):  # type: ignore[type-arg]
    """A table whose changelog partition is its key's murmur2 partition, computed here.

    That is the partition the producers' default partitioner gives the same key on the
    source topic, so a key's state is recovered by the worker that owns its ticks.
    Faust's own `use_partitioner` asks the producer's metadata for the changelog topic,
    which on a fresh start may not know the just-created topic yet: the write then fails
    and the agent crashes.
    """

    _partitioner = DefaultPartitioner()

    def partition_for_key(self, key: Any) -> int | None:
        n = self.partitions or 1
        raw = key if isinstance(key, bytes) else str(key).encode()
        return int(self._partitioner(raw, list(range(n)), list(range(n))))


class Batches:
    """The stream's events in batches of up to BATCH_MAX, handed over without waiting.

    A pump task takes events from the stream (a `noack` stream: nothing is acknowledged
    by faust itself) while the agent handles the previous batch, so faust keeps
    delivering while outputs wait for their acks. A batch is handed over at BATCH_MAX
    events, at an event that was the last of its partition when fetched (its offset
    reaches the high watermark), or BATCH_MAX_WAIT_S after its first event: a backlog
    gives full batches, a live feed each tick as soon as it is there. Events are
    acknowledged only after the agent has handled their batch (outputs acknowledged,
    then tables written), so a committed offset never runs ahead of the state; the time
    bound lets a rebalance, which waits for every delivered event to be acknowledged,
    proceed even when the rest of a partition never comes.

    This is faust's `take_events` with another end-of-batch rule: take_events waits out
    its `within` for every batch that is not full, and takes no event while a batch is
    being handled.
    """

    def __init__(self, app: faust.App, stream: faust.StreamT[Any]) -> None:
        self.app = app
        self.stream = cast(faust.Stream[Any], stream).noack()
        self.highwater = app.consumer.highwater
        self.pending: list[Any] = []
        self.pending_bytes = 0
        self.first_at = 0.0
        self.complete = False  # `pending` ends a batch by itself
        self.wake = asyncio.Event()  # first event of a batch, or a complete batch
        self.room = asyncio.Event()  # the pump may add again
        self.room.set()

    async def _pump(self) -> None:
        try:
            async for event in self.stream.events():
                while len(self.pending) >= BATCH_MAX or self.pending_bytes >= BATCH_MAX_BYTES:
                    self.room.clear()
                    await self.room.wait()
                if not self.pending:
                    self.first_at = time.monotonic()
                    self.wake.set()
                self.pending.append(event)
                message = event.message
                self.pending_bytes += len(message.value or b"")
                if (
                    len(self.pending) >= BATCH_MAX
                    or self.pending_bytes >= BATCH_MAX_BYTES
                    or message.offset + 1 >= (self.highwater(message.tp) or 0)
                ):
                    self.complete = True
                    self.wake.set()
        finally:
            self.wake.set()  # the stream ended: the agent hands over what is left

    async def __aiter__(self) -> AsyncIterator[Sequence[Any]]:
        pump = asyncio.ensure_future(self._pump())
        try:
            while True:
                await self.wake.wait()
                while self.pending and not self.complete and not pump.done():
                    left = self.first_at + BATCH_MAX_WAIT_S - time.monotonic()
                    if left <= 0:
                        break
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), left)
                self.wake.clear()
                if self.pending:
                    batch, self.pending, self.complete = self.pending, [], False
                    self.pending_bytes = 0
                    self.room.set()
                    yield batch
                    for done in batch:
                        # Declared right before its ack: only such acks are committed.
                        processed(self.app, done.message)
                        await self.stream.ack(done)
                elif pump.done():
                    pump.result()  # re-raise what stopped the stream, if anything
                    return
        finally:
            pump.cancel()
            # Taken but never handed over (the agent stopped): as `unacked_unless_done`,
            # never committed, redelivered after a restart, not waited for by a stop.
            for event in self.pending:
                event.message.acked = True


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


@contextmanager
def unacked_unless_done(events: Sequence[Any], continuity: Continuity) -> Iterator[None]:
    """Keep a batch from being committed unless its processing finished.

    `Batches` acks a batch only when the agent asks for the next one, but any ack of an
    event whose processing was cancelled half-way (a worker stopping) or raised would let
    the next commit (a stop commits) cover events whose outputs or state were never
    written: lost. (faust's `take_events`, used before, acks in a `finally`.) Marking
    their messages acked without telling the consumer makes a later ack a no-op, so their
    offsets are never committed and a restart redelivers them; it also lets a stop's
    `wait_empty` stop waiting for them. A raising agent is restarted by faust on the same
    consumer, whose stream goes on after these events: `continuity` is told they were
    not processed, so the next record of their partitions rewinds them (without that
    the commit would wait for them forever).
    """
    try:
        yield
    except BaseException:
        for event in events:
            event.message.acked = True
        continuity.undo([event.message for event in events])
        raise


def heartbeat_interval(rules: Rules) -> float:
    waits = [rule.max_wait_s for rule in rules.divergence]
    waits += [rule.max_wait_s for rule in rules.ah]
    waits = waits or [2.0]
    return min(max(min(waits) / 4, 0.1), 1.0)


def ingested_at(message: Any) -> int | None:
    """The tick's ingest time (epoch ms): our header if set, else the Kafka timestamp."""
    for name, value in message.headers or ():
        if name == INGESTED_AT_HEADER and value:
            try:
                return int(value)
            except ValueError:
                return None
    timestamp = message.timestamp  # seconds (float), as faust converts it
    return round(timestamp * 1000) if timestamp is not None else None


def _origin_headers(origin_ms: int | None) -> list[tuple[str, bytes]] | None:
    return None if origin_ms is None else [(INGESTED_AT_HEADER, str(origin_ms).encode())]


@dataclass
class Readiness:
    """The worker's readiness, written on the event loop and read by the /readyz thread.

    Faust's services (tables, recovery) are created lazily and bound to the loop that
    first touches them: probing them from the HTTP thread could create them there and
    stall the worker, so only this plain snapshot crosses threads.
    """

    ready: bool = False
    reason: str = "starting"

    def check(self) -> tuple[bool, str]:
        return self.ready, self.reason


def build_app(
    settings: Settings,
    rules: Rules,
    *,
    web_port: int | None = None,
    metrics: ProcessorMetrics | None = None,
    readiness: Readiness | None = None,
) -> faust.App:
    app_id = settings.namespace + settings.processor_app_id
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
    install_contiguous_commits(app)

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

    def state_table(name: str) -> Any:
        table = StateTable(
            app,
            name=name,
            default=None,
            partitions=settings.partitions,
            beacon=app.tables.beacon,
            use_partitioner=True,
        )
        app.tables.add(table)
        # Keys are the raw symbol / pair bytes, as on the source topics, so they hash to
        # the same partition. A Table derives its key codec from key_type (json unless a
        # Record says otherwise) and builds its changelog topic in the constructor: both
        # must be redone, or writes go out raw and recovery, decoding JSON, drops every
        # record and never completes.
        table.key_serializer = "raw"
        table.changelog_topic = table._new_changelog_topic()
        return table

    # use_partitioner: a changelog record goes to the partition its key hashes to, the
    # same murmur2 partitioning the ingestor used for `ticks` (the key is the symbol) and
    # the symbol stage for `by_pair` (the key is the pair). Faust's default would take
    # the partition of the current event, which in a mixed batch is some other key's.
    symbol_table, pair_table = (state_table(name) for name in STATE_TABLES)

    symbol_stage = SymbolStage(rules, settings.ticks_topic, settings.partitions)
    pair_stage = PairStage(rules, settings.topic(PAIR_FEED_TOPIC))
    history_stage = HistoryStage(rules, settings.history_topic)
    # The tick and history agents share the symbol table: each holds this lock from
    # reading states to writing them back, so neither overwrites the other's merge.
    symbol_lock = asyncio.Lock()

    async def write_states(table: Any, states: dict[str, dict[str, Any]]) -> None:
        # Not `table[key] = state`: Faust queues that changelog record in its producer
        # buffer and commits offsets after a `producer.flush()` that can return with
        # records still queued (ProducerBuffer.flush_atmost gives up after 0.1 s without
        # a send, and does not see the record its sender task has already dequeued). A
        # kill -9 then leaves a committed offset ahead of the recovered state: the ticks
        # in between are never evaluated (lost alerts) and later ticks are judged against
        # the older state (extra alerts). Sent and awaited here, the state is on the
        # broker before this batch's events are acked, hence before any commit covers them.
        if not states:
            return
        # Straight to the producer, JSON by orjson (what the table's json codec reads
        # back on recovery): faust's Topic.send costs a channel, a FutureMessage and a
        # codec call per record, and a batch of bundles over a broad market writes
        # thousands of keys (a third of a backfill's busy time went there).
        topic = table.changelog_topic.get_topic_name()
        send, dumps, partition_for = app.producer.send, orjson.dumps, table.partition_for_key
        pending: list[Awaitable[Any]] = []
        for key, state in states.items():
            raw = key.encode()
            pending.append(await send(topic, raw, dumps(state), partition_for(raw), None, None))
        await asyncio.gather(*pending)
        data = table.data  # the store, written without a second changelog record
        for key, state in states.items():
            data[key.encode()] = state

    def load_from(table: Any) -> Any:
        def load(key: str) -> dict[str, Any] | None:
            value = table.get(key.encode())
            return value if isinstance(value, dict) else None

        return load

    async def emit(out: Outputs) -> None:
        # Straight to faust's producer, awaited together: sent now and acknowledged
        # before the caller writes the tables. (Topic.send without force would attach
        # them to the current event and publish them only at its commit, which this
        # batch's own await would then wait for forever; with force it adds a sensor
        # call and a PendingMessage per record.)
        send = app.producer.send
        pending: list[Awaitable[Any]] = []
        for signal, origin in zip(out.signals, out.signal_origins, strict=True):
            pending.append(
                await send(
                    signals_topic,
                    signal.subject.encode(),
                    signal.model_dump_json().encode(),
                    None,
                    None,
                    _origin_headers(origin),
                )
            )
        # A pair's ticks of the batch in one record (a bundle), as the ingestor's ticks.
        for pair, value, origin in out.pair_records():
            pending.append(
                await send(by_pair_topic, pair.encode(), value, None, None, _origin_headers(origin))
            )
        for dead in out.dead:
            pending.append(
                await send(
                    dlq_topic,
                    dead.symbol.encode() if dead.symbol else None,
                    dead.model_dump_json().encode(),
                    None,
                    None,
                    [(DLQ_REASON_HEADER, dead.reason.encode())],
                )
            )
        if pending:
            await asyncio.gather(*pending)

    # One per agent: each sees its own topic's partitions.
    symbol_continuity, pair_continuity, history_continuity = (
        Continuity(),
        Continuity(),
        Continuity(),
    )

    @app.on_partitions_revoked.connect
    def forget_positions(_sender: Any, /, *_args: Any, signal: Any, **_kwargs: Any) -> None:
        symbol_continuity.forget()
        pair_continuity.forget()
        history_continuity.forget()

    async def without_gaps(
        events: Sequence[Any], continuity: Continuity, topic: str
    ) -> Sequence[Any]:
        # Where Faust sought each partition to after its assignment.
        committed = cast(Any, app.consumer)._committed_offset
        # No committed offset (Faust also stores 0 as none): the partition is read from
        # its log start, so that is where it must begin; otherwise the first record
        # would be taken for the start, and a hole before it would go unnoticed.
        fresh = {
            TP(topic, e.message.partition)
            for e in events
            if e.message.partition not in continuity.next
            and committed.get(TP(topic, e.message.partition)) is None
        }
        earliest: dict[TP, int] = {}
        if fresh:
            try:
                earliest = dict(await app.consumer.earliest_offsets(*fresh))
            except Exception as exc:  # the broker may be restarting: the first record starts it
                log.warning("%s: log start offsets unknown (%r)", topic, exc)

        def start(partition: int) -> int | None:
            tp = TP(topic, partition)
            offset = committed.get(tp)
            if offset is None:
                offset = earliest.get(tp)
            return int(offset) if offset is not None else None

        admitted, rewind = continuity.admit([e.message for e in events], start, time.monotonic())
        for event, ok in zip(events, admitted, strict=True):
            if not ok:
                # Never committed: fetched again after the seek below.
                event.message.acked = True
        for partition, offset in rewind.items():
            log.warning(
                "%s[%d]: records missing from %d on, seeking back", topic, partition, offset
            )
            await seek_back(topic, partition, offset)
        return [e for e, ok in zip(events, admitted, strict=True) if ok]

    async def seek_back(topic: str, partition: int, offset: int) -> None:
        try:
            await app.consumer.seek(TP(topic, partition), offset)
        except Exception as exc:  # e.g. a stale record of a partition revoked meanwhile
            log.warning("%s[%d]: seek failed (%r); records held back", topic, partition, exc)

    @app.timer(interval=REWIND_RETRY_S)  # type: ignore[untyped-decorator]
    async def retry_rewinds() -> None:
        # A rewind whose first record has not come: the seek was undone (Continuity's
        # `waiting`), and at the end of a partition no later record would show the hole.
        now = time.monotonic()
        for continuity, topic in (
            (symbol_continuity, settings.ticks_topic),
            (pair_continuity, by_pair.get_topic_name()),
            (history_continuity, settings.history_topic),
        ):
            for partition, offset in continuity.overdue(now, REWIND_RETRY_S).items():
                log.warning(
                    "%s[%d]: record %d not fetched since the rewind, seeking back again",
                    topic,
                    partition,
                    offset,
                )
                await seek_back(topic, partition, offset)

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

    @app.agent(ticks, name="records", concurrency=1)
    async def detect_symbols(stream: faust.StreamT[Any]) -> None:
        async for events in Batches(app, stream):
            with unacked_unless_done(events, symbol_continuity):
                kept = await without_gaps(events, symbol_continuity, settings.ticks_topic)
                batch = records(kept)
                async with symbol_lock:
                    started = time.perf_counter()
                    out = symbol_stage.process(batch, load_from(symbol_table))
                    if metrics is not None:
                        metrics.batch(
                            "symbol",
                            out.ticks,
                            time.perf_counter() - started,
                            out.evaluated,
                            out.signals,
                            out.dead,
                        )
                        # Bundles have no key: the symbols are those whose state moved.
                        metrics.staleness.seen(out.states)
                    await emit(out)
                    await write_states(symbol_table, out.states)

    @app.agent(history, name="history", concurrency=1)
    async def merge_history(stream: faust.StreamT[Any]) -> None:
        async for events in Batches(app, stream):
            with unacked_unless_done(events, history_continuity):
                kept = await without_gaps(events, history_continuity, settings.history_topic)
                async with symbol_lock:
                    out = history_stage.process(records(kept), load_from(symbol_table))
                    if metrics is not None:
                        metrics.history(out.bars, out.dead)
                    await emit(out)
                    await write_states(symbol_table, out.states)

    @app.agent(by_pair, name="divergence", concurrency=1)
    async def detect_pairs(stream: faust.StreamT[Any]) -> None:
        async for events in Batches(app, stream):
            with unacked_unless_done(events, pair_continuity):
                kept = await without_gaps(events, pair_continuity, by_pair.get_topic_name())
                batch = records(kept)
                started = time.perf_counter()
                out = pair_stage.process(batch, load_from(pair_table), time.time())
                if metrics is not None:
                    elapsed = time.perf_counter() - started
                    metrics.batch("pair", len(batch), elapsed, out.evaluated, out.signals, out.dead)
                    metrics.buffers(pair_stage.pending())
                await emit(out)
                await write_states(pair_table, out.states)

    heartbeat = Heartbeat().model_dump_json().encode()

    @app.timer(interval=heartbeat_interval(rules), on_leader=True)  # type: ignore[untyped-decorator]
    async def release_held_ticks() -> None:
        # Through the topic, not a direct table poke: the worker owning each pair's
        # partition handles it, in order with that pair's ticks.
        for key in pair_stage.subjects():
            await by_pair.send(key=key.encode(), value=heartbeat)

    if readiness is not None:
        probe = readiness

        @app.timer(interval=0.5)  # type: ignore[untyped-decorator]
        async def refresh_readiness() -> None:
            if app.rebalancing:
                probe.ready, probe.reason = False, "rebalancing"
            elif app.in_recovery or not cast(Any, app.tables).recovery.completed.is_set():
                probe.ready, probe.reason = False, "recovering tables from their changelogs"
            else:
                probe.ready, probe.reason = True, "partitions assigned, tables recovered"

    return app
