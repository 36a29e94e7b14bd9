"""A faust stream's events in batches, acknowledged only once their batch is handled."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import faust

from services.processor.continuity import Continuity
from services.processor.faust_compat.consumer import processed

# Batches amortise table writes: a symbol's state is written once per batch, not per tick.
BATCH_MAX = 2000
# A record may be a bundle of many ticks: a batch also ends at this many value bytes
# (about 10k ticks), so its outputs and state writes stay small and a rebalance's wait
# for its ack stays short.
BATCH_MAX_BYTES = 1024 * 1024
# The longest a batch waits for the rest of a partition it was told exists (`Batches`).
BATCH_MAX_WAIT_S = 0.25
# Loop turns without a new event after which a complete batch is taken: faust hands
# over each record through a `wait_first` of two tasks, a few turns per record.
# Measured at 5k ticks/s in 20 ms bundles: without it a fetch of six partitions made two
# batches (the first partition, then the other five), with it one; the processor's CPU
# fell by a fifth (docs/bench.md).
SETTLE_TURNS = 8


class Batches:
    """The stream's events in batches of up to BATCH_MAX, handed over without waiting.

    A pump task takes events from the stream (a `noack` stream: nothing is acknowledged
    by faust itself) while the agent handles the previous batch, so faust keeps
    delivering while outputs wait for their acks. A batch is handed over at BATCH_MAX
    events, at an event that was the last of its partition when fetched (its offset
    reaches the high watermark) once SETTLE_TURNS loop turns bring no other event (the
    rest of that fetch), or BATCH_MAX_WAIT_S after its first event: a backlog
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

    def _full(self) -> bool:
        return len(self.pending) >= BATCH_MAX or self.pending_bytes >= BATCH_MAX_BYTES

    async def _pump(self) -> None:
        try:
            async for event in self.stream.events():
                while self._full():
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
                if self.complete:
                    # A fetch's partitions reach the stream one after another: the event
                    # that completed this batch may end only the first of them, and the
                    # rest are a few loop turns away. Taking them too spares a batch (its
                    # produce requests and state write) per fetch at a live pace.
                    seen, still = len(self.pending), 0
                    while still < SETTLE_TURNS and not self._full() and not pump.done():
                        await asyncio.sleep(0)
                        still = still + 1 if len(self.pending) == seen else 0
                        seen = len(self.pending)
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
