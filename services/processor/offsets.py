"""Faust's consumer with an offset commit that never passes an unprocessed record.

Faust commits, per source partition, the end of the first run of consecutive acked
offsets. Three of its rules let that run cover records nobody processed:

- Its streams ack the messages they skip: a message of an older consumer generation, or
  one taken while the flow is suspended (a rebalance or a stop has begun), is acked
  without being handed to the agent, on the assumption that it will be fetched again.
  `Batches` (batches.py) keeps pulling from the stream while the agent works, so it does
  take such messages: the one a blocked conductor puts into the queue right after a
  stop or a revocation cleared it, and the older generation's after a rebalance. Their
  acks made the next commit (a stop commits, and so does a revocation) cover them.
- A jump in fetched offsets is taken for a compacted range or transaction markers and
  recorded as a "gap" (`_add_gap`) that `_new_offset` later counts as acked, together
  with the record after the jump (the interval is closed at its end). Our sources are
  neither compacted nor transactional: a jump is a hole in delivery (records fetched and
  then dropped by `Consumer.getmany` when a partition is paused for table recovery, the
  flow stops or the generation changes). `Continuity` holds the records after a hole
  back and seeks the partition back to it, but the gap stayed recorded: as soon as the
  refetched records were acked past its start, the next commit covered the whole hole,
  processed or not.
- The check for a run that does not start at the committed offset lets a run starting
  one past it through (`min(acked) - committed > 1`), so the record at the committed
  offset itself could be skipped.

Any of them, followed by a kill -9 or a stop killed half-way, leaves the committed offset
ahead of the tables: the ticks in between are never evaluated (missing alerts, all
consecutive) and later ticks are judged against the older state (extra alerts).

Here only the acks of messages an agent declared processed (`processed`, called after
the batch's outputs and table writes are acknowledged by Kafka) count; a jump records
nothing; and a commit covers only the acked run that starts exactly at the committed
offset. A hole in the acks holds the partition's commit back until the records are
refetched and processed (Continuity's seek-back, or the seek to the committed offset
after a restart or rebalance): a delay, never a loss.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

log = logging.getLogger("marketsignal.processor")

HELD_WARN_S = 30.0
# How long the broker may hold a fetch that finds no new records. faust fixes it at
# 1,500 ms, with no setting, and aiokafka keeps one fetch in flight per broker: a fetch
# sent while a partition's previous records were still being consumed leaves that
# partition out, and new records on it then wait for the held fetch to time out. That
# was the processor's ~2 s latency stalls under load; an idle worker now polls the
# broker about 40 times a second instead.
FETCH_MAX_WAIT_MS = 25


class ShortFetchWaitThread(AIOKafkaConsumerThread):
    """faust's consumer thread, its aiokafka consumer with FETCH_MAX_WAIT_MS."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() to build its fetcher: set before that.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class ContiguousCommitConsumer(Consumer):
    """aiokafka-driven faust consumer; only the commit offset rules differ."""

    # The message whose ack comes next, as `processed` declared it. One slot, not a set:
    # `processed` is called right before the ack, with no await in between (Stream.ack
    # does not suspend), so no other ack can come first; a set of weak references cost
    # about 8 us a message.
    _acking: Message | None = None

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return ShortFetchWaitThread(self, loop=self.loop, beacon=self.beacon)

    async def _seek(self, partition: TP, offset: int) -> None:
        # faust calls the aiokafka consumer's seek from the event loop's thread, while the
        # consumer's own thread may be inside Fetcher.fetched_records, iterating the dict
        # of fetched records from which seek deletes the partition's entry: a KeyError
        # there crashes the fetcher and the worker stalls (seen in the kill -9 e2e test,
        # more often with the short fetch wait). Seek in the consumer's thread instead.
        thread = self._thread

        async def seek_in_thread() -> None:
            thread.seek(partition, offset)

        await thread.call_thread(seek_in_thread)

    def processed(self, message: Message) -> None:
        """The agent is done with `message` and acks it now: that ack may be committed."""
        self._acking = message

    def ack(self, message: Message) -> bool:
        if message is self._acking:
            self._acking = None
            return bool(super().ack(message))
        # Skipped by a stream, never processed: settled for `wait_empty`, not committed.
        with ack_lock:
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
        return False

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # `_drain_messages` calls this with the offset after the last one read and the
        # first one read after the jump; that record is still delivered.
        log.warning(
            "%s[%d]: fetched offsets jump to %d (records from %d not delivered); "
            "not counted as processed",
            tp.topic,
            tp.partition,
            offset_to,
            offset_from,
        )

    _held_since: dict[TP, tuple[int, float]] | None = None

    def _new_offset(self, tp: TP) -> int | None:
        committed = self._committed_offset[tp]
        offset = commit_offset(self._acked[tp], self._acked_index[tp], committed)
        if offset is None and self._acked[tp] and committed is not None:
            self._note_held(tp, committed)
        return offset

    def _note_held(self, tp: TP, committed: int) -> None:
        # A commit held back for long means a record that is never processed: say so once.
        held = self._held_since if self._held_since is not None else {}
        self._held_since = held
        now = time.monotonic()
        since = held.get(tp)
        if since is None or since[0] != committed:
            held[tp] = (committed, now)
        elif now - since[1] >= HELD_WARN_S:
            held[tp] = (committed, float("inf"))
            log.warning(
                "%s[%d]: offset %d not processed for %.0f s; later ones are (from %d): "
                "commit held back",
                tp.topic,
                tp.partition,
                committed,
                HELD_WARN_S,
                self._acked[tp][0],
            )


def commit_offset(acked: list[int], index: set[int], committed: int | None) -> int | None:
    """The offset to commit for a partition, or None; takes the run it covers out of
    `acked` (acked offsets, any order) and `index` (the same offsets, faust's set).

    Only the acked run that starts at `committed` counts. `committed` None means faust
    knows no committed offset (0 is stored as None, and a rebalance forgets it until the
    partition is assigned again); the run then starts at the lowest acked offset, where
    this worker's processing of the partition started (`Continuity` admits a partition's
    records only in order from there).
    """
    if not acked:
        return None
    acked.sort()
    if committed is not None:
        # Acks of records a seek or a commit has already put behind the committed
        # offset (a replay, a batch finished during a rebalance) say nothing new.
        stale = bisect_left(acked, committed)
        if stale:
            index.difference_update(acked[:stale])
            del acked[:stale]
        if not acked or acked[0] != committed:
            return None  # the record at the committed offset is not processed yet
    end = acked[0]
    run = 1
    while run < len(acked) and acked[run] == end + 1:
        end += 1
        run += 1
    index.difference_update(acked[:run])
    del acked[:run]
    return end + 1


def processed(app: Any, message: Message) -> None:
    """Declare `message` processed by an agent, so that the ack that follows (at once,
    with no await in between) is committed."""
    app.consumer.processed(message)


def install(app: Any) -> None:
    """Make `app` create its consumer from `ContiguousCommitConsumer` (before first use)."""
    app.transport.Consumer = ContiguousCommitConsumer
