"""faust's producer as the processor sends with it: one record (`send`), or one changelog
partition's records as one producer batch (`send_batch`).

Both return once the records are queued, with the future of their acknowledgement, so
a caller queues a whole batch's records before awaiting any acknowledgement. Both go
through the one producer faust started: the same connection, queue and order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast

import faust

from services.processor.faust_compat.producer import aiokafka_producer
from services.processor.handler import Headers


class Sender:
    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None,
        timestamp: float | None,
        headers: Headers,
    ) -> Awaitable[Any]:
        """The handler's `Send`: one record, sent now."""
        # Straight to faust's producer, awaited together by the handler: sent now and
        # acknowledged before it writes the tables. (Topic.send without force would attach
        # them to the current event and publish them only at its commit, which this
        # batch's own await would then wait for forever; with force it adds a sensor call
        # and a PendingMessage per record.)
        return cast(
            Awaitable[Any],
            await self.app.producer.send(topic, key, value, partition, timestamp, headers),
        )

    async def send_batch(
        self, topic: str, partition: int, records: list[tuple[bytes, bytes]]
    ) -> Awaitable[Any]:
        """The state tables' `SendBatch`: one future per changelog partition, not per key."""
        producer = aiokafka_producer(self.app)
        acks: list[Awaitable[Any]] = []
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # an empty one takes any
        acks.append(await producer.send_batch(batch, topic, partition=partition))
        return asyncio.gather(*acks)
