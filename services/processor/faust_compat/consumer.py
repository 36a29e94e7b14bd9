"""faust's aiokafka consumer with the processor's commit rules, fetch wait and seek.

Jobs:

- commit only what `offsets.commit_offset` allows: `_new_offset` is replaced, `ack`
  counts only the message an agent declared `processed`, `_add_gap` records nothing;
- hold an empty fetch at most `FETCH_MAX_WAIT_MS` (`_fetch_max_wait_ms` of aiokafka's
  consumer, which faust fixes with no setting), or `FETCH_IDLE_WAIT_MS` when no fetched
  record is left to consume (`adapt_fetch_wait`);
- seek in the consumer's own thread (`_seek`);
- tell `Rewinds` where faust sought each partition after its assignment
  (`committed_offsets`), and how far its fetch loop delivered (`read_offsets`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from services.processor.offsets import HeldCommits, commit_offset

log = logging.getLogger("marketsignal.processor")

# How long the broker may hold a fetch that finds no new records. aiokafka keeps one
# fetch in flight per broker and a fetch sent while a partition's previous records were
# still being consumed leaves that partition out: new records on it wait for the held
# fetch to time out. faust's fixed 1,500 ms made that a latency stall; at 25 ms an idle
# worker polls about 40 times a second (docs/processor.md, the hot path).
FETCH_MAX_WAIT_MS = 25
# The wait of a fetch that leaves no partition out, by default
# (`MARKETSIGNAL_PROCESSOR_FETCH_IDLE_WAIT_MS`): every fetched record has been handed
# over, so the request names every assigned partition that is not paused, and a record
# on any of them answers it at once. Holding it long costs no latency and spares an idle
# worker 40 empty fetches a second (issue 26: the broker's idle CPU). A seek made while
# it is held (a rewind, rare) waits for it to come back.
FETCH_IDLE_WAIT_MS = 500


def adapt_fetch_wait(fetcher: Any, short_ms: int, idle_ms: int) -> None:
    """Make aiokafka's `fetcher` hold a fetch `idle_ms` when no fetched record is still
    waiting to be consumed, else `short_ms` (a partition is then left out of the
    request, and its new records would wait for the held fetch)."""
    build = fetcher._get_actions_per_node

    def actions_per_node(assignment: Any) -> Any:
        fetcher._fetch_max_wait_ms = short_ms if fetcher._records else idle_ms
        return build(assignment)

    fetcher._get_actions_per_node = actions_per_node


class ShortFetchWaitThread(AIOKafkaConsumerThread):
    """faust's consumer thread, its aiokafka consumer's fetch wait FETCH_MAX_WAIT_MS, or
    `idle_wait_ms` when nothing fetched is left to consume."""

    idle_wait_ms = FETCH_IDLE_WAIT_MS

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() to build its fetcher: set before that.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        consumer = self._consumer
        assert consumer is not None  # on_start has just created and started it
        # The fetcher exists once the aiokafka consumer has started.
        adapt_fetch_wait(consumer._fetcher, FETCH_MAX_WAIT_MS, self.idle_wait_ms)


class ContiguousCommitConsumer(Consumer):
    """aiokafka-driven faust consumer; the commit rules are services/processor/offsets.py."""

    # The message whose ack comes next, as `processed` declared it. One slot, not a set:
    # `processed` is called right before the ack, with no await in between (Stream.ack
    # does not suspend), so no other ack can come first; a set of weak references cost
    # about 8 us a message.
    _acking: Message | None = None
    # Created on first use: faust's constructor is left alone.
    _held_commits: HeldCommits | None = None

    # Set by `install_consumer`: see ShortFetchWaitThread.
    fetch_idle_wait_ms = FETCH_IDLE_WAIT_MS

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        thread = ShortFetchWaitThread(self, loop=self.loop, beacon=self.beacon)
        thread.idle_wait_ms = self.fetch_idle_wait_ms
        return thread

    async def _seek(self, partition: TP, offset: int) -> None:
        # faust calls the aiokafka consumer's seek from the event loop's thread, while the
        # consumer's own thread may be inside Fetcher.fetched_records, iterating the dict
        # of fetched records from which seek deletes the partition's entry: a KeyError
        # there crashes the fetcher and the worker stalls. Seek in the consumer's thread.
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
        # The same bookkeeping as faust's own ack, minus the acked offset.
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

    def _new_offset(self, tp: TP) -> int | None:
        committed = self._committed_offset[tp]
        acked = self._acked[tp]
        offset = commit_offset(acked, self._acked_index[tp], committed)
        if offset is None and acked and committed is not None:
            if self._held_commits is None:
                self._held_commits = HeldCommits()
            self._held_commits.note(tp, committed, acked[0])
        return offset


def install_consumer(app: faust.App, fetch_idle_wait_ms: int = FETCH_IDLE_WAIT_MS) -> None:
    """Make `app` create its consumer from `ContiguousCommitConsumer` (before first use),
    whose fetches wait up to `fetch_idle_wait_ms` when none leaves a partition out."""

    class Configured(ContiguousCommitConsumer):
        pass

    # max(): an idle wait below the short one would only add requests.
    Configured.fetch_idle_wait_ms = max(fetch_idle_wait_ms, FETCH_MAX_WAIT_MS)
    cast(Any, app).transport.Consumer = Configured


def processed(app: faust.App, message: Message) -> None:
    """Declare `message` processed by an agent, so that the ack that follows (at once,
    with no await in between) is committed."""
    cast(Any, app).consumer.processed(message)


def committed_offsets(app: faust.App) -> Mapping[TP, int | None]:
    """Where faust sought each assigned partition: its committed offset, None when there
    is none (faust also stores 0 as None). A live view: it follows rebalances."""
    return cast("Mapping[TP, int | None]", cast(Any, app).consumer._committed_offset)


def read_offsets(app: faust.App) -> Mapping[TP, int | None]:
    """The offset of the last record faust's fetch loop handed to the streams, per
    partition (None before the first, or after a seek to offset 0). A live view."""
    return cast("Mapping[TP, int | None]", cast(Any, app).consumer._read_offset)


def flow_state(app: faust.App, tp: TP) -> str:
    """Whether faust's fetch loop asks for `tp`: "active", "paused" (by faust, e.g. during
    recovery), "buffered" (its stream's queue was full) or "left out" (none of these:
    it would never be fetched again)."""
    consumer = cast(Any, app).consumer
    if tp in consumer._paused_partitions:
        return "paused"
    if tp in consumer._buffered_partitions:
        return "buffered"
    if tp in consumer._get_active_partitions():
        return "active"
    return "left out"


async def group_committed(app: faust.App, tps: Iterable[TP]) -> dict[TP, int | None]:
    """The group's committed offset of each of `tps`, asked of the broker in the
    consumer's thread (None: none committed)."""
    thread = cast(Any, app).consumer._thread
    consumer = thread._ensure_consumer()
    out: dict[TP, int | None] = {}
    for tp in tps:
        offset = await thread.call_thread(consumer.committed, tp)
        out[tp] = int(offset) if offset is not None else None
    return out
