"""The processor's state tables: faust tables keyed like the source topics, written
straight to their changelogs (`ChangelogState`, the batch handler's `StateTable`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from aiokafka.partitioner import DefaultPartitioner

from services.processor.faust_compat.changelog import rebuild_changelog_topic

# One changelog partition's records (key, value), sent as one producer batch:
# (topic, partition, records) -> the future of their acknowledgement.
SendBatch = Callable[[str, int, list[tuple[bytes, bytes]]], Awaitable[Awaitable[Any]]]

# The changelog-backed tables; the worker creates their changelog topics (faust's names,
# compacted) before it starts (services/processor/worker.py).
STATE_TABLES = ("symbol-state", "pair-state")


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


def state_table(app: faust.App, name: str, partitions: int) -> StateTable:
    # use_partitioner: a changelog record goes to the partition its key hashes to, the
    # same murmur2 partitioning the ingestor used for `ticks` (the key is the symbol) and
    # the symbol stage for the pair feed (the key is the pair). Faust's default would take
    # the partition of the current event, which in a mixed batch is some other key's.
    table = StateTable(
        app,
        name=name,
        default=None,
        partitions=partitions,
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
    rebuild_changelog_topic(table)
    return table


class ChangelogState:
    """A state table as the batch handler sees it: read a key, write a batch's states."""

    def __init__(self, table: Any, send_batch: SendBatch) -> None:
        self.table = table
        self.send_batch = send_batch
        self._partitions: dict[bytes, int] = {}  # murmur2 in Python: once per key

    def load(self, key: str) -> dict[str, Any] | None:
        value = self.table.get(key.encode())
        return value if isinstance(value, dict) else None

    async def write(self, states: dict[str, dict[str, Any]]) -> None:
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
        # JSON by orjson (what the table's json codec reads back on recovery), one
        # producer batch per changelog partition: a record-by-record send costs a
        # coroutine chain and a future per key, and at a live 5k ticks/s the changelog
        # takes about as many records as there are ticks (a broad market's bundles, more).
        table = self.table
        topic = table.changelog_topic.get_topic_name()
        dumps, partitions = orjson.dumps, self._partitions
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, state in states.items():
            raw = key.encode()
            partition = partitions.get(raw)
            if partition is None:
                partition = partitions[raw] = table.partition_for_key(raw)
            by_partition.setdefault(partition, []).append((raw, dumps(state)))
        pending: list[Awaitable[Any]] = []
        for partition, records in by_partition.items():
            pending.append(await self.send_batch(topic, partition, records))
        await asyncio.gather(*pending)
        data = table.data  # the store, written without a second changelog record
        for key, state in states.items():
            data[key.encode()] = state
