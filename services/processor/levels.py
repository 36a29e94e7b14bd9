"""Subscribers' price levels held by every worker: the whole compacted `levels` topic.

The topic is keyed by level id, not by symbol, so Faust's partition assignment would give
each worker the levels of the wrong partitions: every worker needs every level, for
whichever symbols it holds. `LevelFeed` therefore reads the topic outside the consumer
group, all its partitions, from the beginning at every start, and then follows it:

- a record arms (or re-arms) its level in the `LevelBook` the symbol stage evaluates, a
  tombstone (no value) disarms it. Compaction keeps the latest record of every key, so
  a read from the beginning ends with exactly the live levels: none lost after a
  restart, none resurrected after a delete (a delete's tombstone is the key's latest
  record until the broker drops both).
- a rebalance does not touch it: no partition of it is ever assigned or revoked.
- `ready` is set once the feed has read every partition up to the end offsets it found
  at start. The tick agent waits for it before its first batch (a tick evaluated
  earlier would miss levels that were armed before the worker started), and /readyz
  says "not ready" until then.

The book changes only on the event loop, between two batches of the tick agent (its
stage runs synchronously), so a batch sees one set of levels throughout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas.level import Level
from services.detection.price_level import LevelBook
from services.runtime.outage import Outage

log = logging.getLogger("marketsignal.processor")

# The broker may hold an empty fetch this long. It answers a held fetch as soon as a
# record lands on any of its partitions, so a new level is armed at once whatever this
# is; it only sets the idle polling: 2 fetches a second (at 50 ms, 20: a fifth of the
# idle broker's CPU, issue 26).
FETCH_MAX_WAIT_MS = 500
# A failed fetch (broker away) is retried after this; aiokafka reconnects by itself.
RETRY_S = 1.0


@dataclass
class LevelRecordStats:
    """What the feed has read (logged once it is caught up; tests read it)."""

    armed: int = 0
    disarmed: int = 0
    bad: int = 0


def apply_record(book: LevelBook, key: bytes | None, value: bytes | None) -> str:
    """One record of the levels topic applied to `book`: "armed", "disarmed" or "bad".

    The key is the level id; a value must be a `Level` of that same id. A record that is
    neither is skipped (logged): only the API writes this topic, so it would be a bug or
    a foreign writer, and a level read wrong could fire for the wrong subscriber.
    """
    if not key:
        log.warning("levels topic: a record without a key skipped")
        return "bad"
    try:
        level_id = key.decode()
    except UnicodeDecodeError:
        log.warning("levels topic: a key that is not UTF-8 skipped: %r", key[:100])
        return "bad"
    if value is None:
        book.disarm(level_id)
        return "disarmed"
    try:
        level = Level.model_validate_json(value)
    except ValidationError as exc:
        log.warning("levels topic: record %s is not a level, skipped: %s", level_id, exc)
        return "bad"
    if level.level_id != level_id:
        log.warning("levels topic: record key %s holds level %s, skipped", level_id, level.level_id)
        return "bad"
    book.apply(level_id, level)
    return "armed"


class LevelFeed:
    """The levels topic read whole into `book`, then followed (see the module's doc)."""

    def __init__(self, bootstrap: str, topic: str, book: LevelBook | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.book = LevelBook() if book is None else book
        self.ready = asyncio.Event()
        self.stats = LevelRecordStats()
        self._running = False
        # The next offset to apply per partition, kept across a replaced consumer.
        self._next: dict[TopicPartition, int] = {}

    def apply(self, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        stats = self.stats
        for key, value in records:
            outcome = apply_record(self.book, key, value)
            if outcome == "armed":
                stats.armed += 1
            elif outcome == "disarmed":
                stats.disarmed += 1
            else:
                stats.bad += 1

    async def wait_ready(self) -> None:
        if not self.ready.is_set():
            await self.ready.wait()

    async def run(self) -> None:
        """Read the topic until cancelled (the worker stopping).

        A consumer that fails (the broker away at start, say) is replaced after RETRY_S;
        the new one goes on from the offsets already applied, never from the beginning
        again: re-reading would re-arm a deleted level until its tombstone came round.
        """
        if self._running:  # faust starts app tasks again if the app restarts
            return
        self._running = True
        try:
            while True:
                try:
                    await self._read()
                except KafkaError as exc:
                    log.warning(
                        "levels: reading %s failed (%s), again in %gs", self.topic, exc, RETRY_S
                    )
                    await asyncio.sleep(RETRY_S)
        finally:
            self._running = False

    async def _read(self) -> None:
        # Subscribed without a group: aiokafka then assigns every partition of the topic
        # to this consumer alone, and keeps the assignment in step with the metadata.
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        try:
            await consumer.start()
            partitions = await self._partitions(consumer)
            for tp in partitions:
                applied = self._next.get(tp)
                if applied is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, applied)
            ends = None
            if not self.ready.is_set():
                ends = await consumer.end_offsets(partitions)
                log.info(
                    "levels: reading %s from its start (%d records up to its end)",
                    self.topic,
                    sum(ends.values()),
                )
            await self._follow(consumer, partitions, ends)
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        # The worker created the topic before starting, but the consumer's first
        # metadata may not list its partitions yet.
        while True:
            assigned = consumer.assignment()
            if assigned:
                return sorted(assigned)
            await asyncio.sleep(0.1)

    async def _follow(
        self,
        consumer: AIOKafkaConsumer,
        partitions: list[TopicPartition],
        ends: dict[TopicPartition, int] | None,
    ) -> None:
        """`ends`: the end offsets to read up to before `ready` (None: ready already)."""
        outage = Outage(log, f"levels: Kafka (reading {self.topic})")
        while True:
            if ends is not None and await self._caught_up(consumer, partitions, ends):
                ends = None
                self.ready.set()
                log.info(
                    "levels: %d armed after reading %s (%d records, %d tombstones, %d bad)",
                    len(self.book),
                    self.topic,
                    self.stats.armed,
                    self.stats.disarmed,
                    self.stats.bad,
                )
            try:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                outage.ok()
            except KafkaError as exc:
                outage.failed(exc)
                await asyncio.sleep(RETRY_S)
                continue
            for tp, messages in fetched.items():
                self.apply((m.key, m.value) for m in messages)
                if messages:
                    self._next[tp] = messages[-1].offset + 1

    @staticmethod
    async def _caught_up(
        consumer: AIOKafkaConsumer,
        partitions: list[TopicPartition],
        ends: dict[TopicPartition, int],
    ) -> bool:
        for tp in partitions:
            if await consumer.position(tp) < ends[tp]:
                return False
        return True
