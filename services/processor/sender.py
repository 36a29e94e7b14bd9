"""faust's producer as the processor sends with it: a batch's records of one topic
(`send`), or one changelog partition's records (`send_batch`), as one producer batch per
partition.

Both return once the records are queued, with the future of their acknowledgement, so
a caller queues a whole batch's records before awaiting any acknowledgement. Both go
through the one producer faust started: the same connection, queue and order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import faust

from services.processor.faust_compat.producer import aiokafka_producer, partition_for
from services.processor.handler import OutRecord


class Sender:
    def __init__(self, app: faust.App) -> None:
        self.app = app
        # topic -> (its partition count, key -> partition): murmur2 in Python once per key
        self._placed: dict[str, tuple[int, dict[bytes, int]]] = {}

    async def send(self, topic: str, records: list[OutRecord]) -> Awaitable[Any]:
        """The handler's `Send`: each record to the partition faust's `send` would choose
        (aiokafka's partitioner on its key), a partition's records in one producer batch.
        One record at a time through faust's `send` cost ~25 us each in coroutines, a
        future and a sensor call: a drain's signals or a subscriber's firings by the
        thousand."""
        producer = aiokafka_producer(self.app)
        count = len(await producer.partitions_for(topic))  # waits for metadata, as send does
        placed = self._placed.get(topic)
        if placed is None or placed[0] != count:
            placed = self._placed[topic] = (count, {})
        known = placed[1]
        by_partition: dict[int, list[OutRecord]] = {}
        for record in records:
            key = record[0]
            if key is None:  # a random partition, as the partitioner gives an unkeyed record
                at = partition_for(producer, topic, None)
            else:
                place = known.get(key)
                at = known[key] = partition_for(producer, topic, key) if place is None else place
            by_partition.setdefault(at, []).append(record)
        acks: list[Awaitable[Any]] = []
        for partition, queued in by_partition.items():
            acks += await _send_partition(producer, topic, partition, queued)
        return asyncio.gather(*acks)

    async def send_batch(
        self, topic: str, partition: int, records: list[tuple[bytes, bytes]]
    ) -> Awaitable[Any]:
        """The state tables' `SendBatch`: one future per changelog partition, not per key."""
        producer = aiokafka_producer(self.app)
        queued: list[OutRecord] = [(key, value, None) for key, value in records]
        return asyncio.gather(*await _send_partition(producer, topic, partition, queued))


async def _send_partition(
    producer: Any, topic: str, partition: int, records: list[OutRecord]
) -> list[Awaitable[Any]]:
    """`records` to one partition in as few producer batches as fit: their futures."""
    acks: list[Awaitable[Any]] = []
    batch = producer.create_batch()
    for key, value, headers in records:
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            acks.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()  # full: an empty one takes any record
            batch.append(key=key, value=value, timestamp=None, headers=headers)
    acks.append(await producer.send_batch(batch, topic, partition=partition))
    return acks
