"""The processor's three agents, each moving batches of one source topic through its
`BatchHandler`, and what they share.

records    : ticks      -> SymbolStage  -> signals, by_pair, dead letters; symbol-state
history    : history    -> HistoryStage -> by_pair, dead letters; symbol-state
divergence : by_pair    -> PairStage    -> signals, dead letters; pair-state

An agent only batches events, admits them through `Rewinds` (no hole in a partition),
hands them to its handler and lets `Batches` ack them once handled; everything else is
the handler's and the stages'.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from schemas.common import header_int
from schemas.topics import INGESTED_AT_HEADER
from services.processor.batches import Batches, unacked_unless_done
from services.processor.handler import BatchHandler, Send
from services.processor.history_stage import HistoryStage
from services.processor.metrics import ProcessorMetrics
from services.processor.outputs import Outputs, Record
from services.processor.pair_stage import PairStage
from services.processor.rewinds import Rewinds
from services.processor.symbol_stage import SymbolStage
from services.processor.tables import ChangelogState, SendBatch
from services.processor.topology import Topology


@dataclass(frozen=True)
class Handlers:
    """One batch handler per agent."""

    symbols: BatchHandler
    history: BatchHandler
    pairs: BatchHandler

    def __iter__(self) -> Iterator[BatchHandler]:
        return iter((self.symbols, self.history, self.pairs))


def batch_handlers(
    topology: Topology,
    stages: tuple[SymbolStage, HistoryStage, PairStage],
    send: Send,
    send_batch: SendBatch,
    metrics: ProcessorMetrics | None,
) -> Handlers:
    symbol_stage, history_stage, pair_stage = stages
    outputs = topology.outputs
    symbol_state = ChangelogState(topology.symbol_table, send_batch)

    def observe_symbols(_batch: list[Record], out: Outputs, elapsed: float) -> None:
        if metrics is not None:
            metrics.batch("symbol", out.ticks, elapsed, out.evaluated, out.signals, out.dead)
            metrics.day_moves(out.day_move_ticks, out.without_previous_close)
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
    return Handlers(
        symbols=BatchHandler(
            symbol_stage, send, symbol_state, outputs, lock=symbol_lock, observe=observe_symbols
        ),
        history=BatchHandler(
            history_stage, send, symbol_state, outputs, lock=symbol_lock, observe=observe_history
        ),
        pairs=BatchHandler(
            pair_stage,
            send,
            ChangelogState(topology.pair_table, send_batch),
            outputs,
            observe=observe_pairs,
        ),
    )


def ingested_at(message: Any) -> int | None:
    """The tick's ingest time (epoch ms): our header if set, else the Kafka timestamp."""
    ms = header_int(message.headers, INGESTED_AT_HEADER)
    if ms is not None:
        return ms
    timestamp = message.timestamp  # seconds (float), as faust converts it
    return round(timestamp * 1000) if timestamp is not None else None


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


def add_agents(
    app: faust.App,
    topology: Topology,
    handlers: Handlers,
    rewinds: Rewinds,
    levels_ready: Callable[[], Awaitable[None]],
) -> None:
    """`levels_ready`: awaited before each tick batch; returns once the worker holds every
    level armed before it started (services/processor/levels.py)."""

    def batch_agent(
        topic: faust.TopicT,
        name: str,
        handler: BatchHandler,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        source = topic.get_topic_name()
        continuity = rewinds.continuity[source]

        async def agent(stream: faust.StreamT[Any]) -> None:
            async for events in Batches(app, stream):
                with rewinds.handling_batch(source), unacked_unless_done(events, continuity):
                    if before is not None:
                        await before()
                    kept = await rewinds.without_gaps(events, source)
                    await handler.handle(records(kept))

        app.agent(topic, name=name, concurrency=1)(agent)

    batch_agent(topology.ticks, "records", handlers.symbols, levels_ready)
    batch_agent(topology.history, "history", handlers.history)
    batch_agent(topology.by_pair, "divergence", handlers.pairs)


def forget_on_revocation(app: faust.App, rewinds: Rewinds, handlers: Handlers) -> None:
    """When partitions are revoked, forget what was learnt about them."""

    @app.on_partitions_revoked.connect
    def forget_positions(_sender: Any, /, *_args: Any, signal: Any, **_kwargs: Any) -> None:
        rewinds.forget()
        # Trackers cached for keys of partitions this worker may have lost: without this
        # the caches would only grow as partitions move between workers.
        for handler in handlers:
            handler.revoked()
