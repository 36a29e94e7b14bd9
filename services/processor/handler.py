"""One agent's batch as plain Python: run the stage, send its outputs, await every
acknowledgement, and only then write the new states.

The order is the processor's delivery guarantee (docs/reliability.md). A crash before
the state write leaves the batch's events unacknowledged: they are fetched again, the
stage finds the old state and sends identical outputs again (the alerter drops repeated
alert ids, the pair stage repeated source offsets). A crash after it skips what the
state already holds. So outputs must be on the broker before the state that says they
were sent, and the state before the events are acknowledged (the caller acknowledges
them once `handle` returns).

Nothing here knows faust: `send` queues a topic's records on its producer
(services/processor/sender.py), `table` is an adapter over its table
(services/processor/tables.py), `now` the wall clock; tests pass fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.topics import DLQ_REASON_HEADER, INGESTED_AT_HEADER
from services.processor.outputs import Outputs, Record

Headers = list[tuple[str, bytes]] | None
# One record to send: key, value, headers.
OutRecord = tuple[bytes | None, bytes, Headers]
# send(topic, records): awaiting it queues the records, in order, each to the partition
# its key hashes to, and returns the future of every acknowledgement.
Send = Callable[[str, list[OutRecord]], Awaitable[Awaitable[Any]]]
Load = Callable[[str], dict[str, Any] | None]


class Stage(Protocol):
    def process(self, records: list[Record], load: Load, now: float) -> Outputs: ...

    def forget(self) -> None: ...


class StateTable(Protocol):
    def load(self, key: str) -> dict[str, Any] | None: ...

    async def write(self, states: dict[str, dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class OutputTopics:
    signals: str
    pair_feed: str
    dlq: str


def origin_headers(origin_ms: int | None) -> Headers:
    return None if origin_ms is None else [(INGESTED_AT_HEADER, str(origin_ms).encode())]


class BatchHandler:
    """Handles one agent's batches; `observe` sees each batch's outputs and stage time."""

    def __init__(
        self,
        stage: Stage,
        send: Send,
        table: StateTable,
        topics: OutputTopics,
        *,
        now: Callable[[], float] = time.time,
        lock: asyncio.Lock | None = None,
        observe: Callable[[list[Record], Outputs, float], None] | None = None,
    ) -> None:
        self.stage = stage
        self.send = send
        self.table = table
        self.topics = topics
        self.now = now
        # Two agents sharing one table (ticks and history) share a lock: neither writes
        # a state computed before the other's write.
        self.lock = lock
        self.observe = observe

    async def handle(self, batch: list[Record]) -> Outputs:
        async with self._locked():
            started = time.perf_counter()
            out = self.stage.process(batch, self.table.load, self.now())
            if self.observe is not None:
                self.observe(batch, out, time.perf_counter() - started)
            await self.emit(out)
            await self.table.write(out.states)
        return out

    async def emit(self, out: Outputs) -> None:
        """Send every output now and wait until the broker has acknowledged them all."""
        send, topics = self.send, self.topics
        pending: list[Awaitable[Any]] = []
        if out.signals:
            signals: list[OutRecord] = [
                (
                    signal.subject.encode(),
                    signal.model_dump_json().encode(),
                    origin_headers(origin),
                )
                for signal, origin in zip(out.signals, out.signal_origins, strict=True)
            ]
            pending.append(await send(topics.signals, signals))
        # A pair's ticks of the batch in one record (a bundle), as the ingestor's ticks.
        forwards: list[OutRecord] = [
            (pair.encode(), value, origin_headers(origin))
            for pair, value, origin in out.pair_records()
        ]
        if forwards:
            pending.append(await send(topics.pair_feed, forwards))
        if out.dead:
            dead: list[OutRecord] = [
                (
                    d.symbol.encode() if d.symbol else None,
                    d.model_dump_json().encode(),
                    [(DLQ_REASON_HEADER, d.reason.encode())],
                )
                for d in out.dead
            ]
            pending.append(await send(topics.dlq, dead))
        if pending:
            await asyncio.gather(*pending)

    def revoked(self) -> None:
        """Partitions moved: cached trackers may describe keys this worker lost."""
        self.stage.forget()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        if self.lock is None:
            yield
        else:
            async with self.lock:
                yield
