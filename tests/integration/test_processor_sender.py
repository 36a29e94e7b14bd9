"""The processor's `Sender.send` on the real Kafka: a batch's records of one topic go out
as one producer batch per partition, each record in the partition aiokafka's own `send`
gives its key (the pair feed must stay co-partitioned with the pair table, a subject's
signals in one partition), in order, with its key, value and headers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer

from services.processor.handler import OutRecord
from services.processor.sender import Sender
from services.runtime.kafka_admin import ensure_topics
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration
PARTITIONS = 6


def test_records_go_in_batches_to_the_partitions_send_would_choose(
    settings: Any, namespace: str, read_topic: Callable[..., list[Any]]
) -> None:
    config: Settings = settings()
    batched, single = f"{namespace}sender.batched", f"{namespace}sender.single"
    ensure_topics(config, [batched, single], PARTITIONS)
    # Three records per key, interleaved; a few without a key; values large enough that a
    # partition's records overflow the producer's (small) batch and need a second one.
    keys = [f"S{i}.HK".encode() for i in range(40)]
    records: list[OutRecord] = []
    for round_ in range(3):
        for i, key in enumerate(keys):
            headers = [("ingested_at", str(1000 + i).encode())] if i % 2 else None
            records.append((key, f"{key.decode()}#{round_}|".encode() + b"-" * 200, headers))
    records += [(None, f"unkeyed#{i}".encode(), None) for i in range(3)]

    async def scenario() -> dict[bytes, int]:
        producer = AIOKafkaProducer(
            bootstrap_servers=config.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            max_batch_size=2048,
        )
        await producer.start()
        try:
            app = SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: producer))
            sender = Sender(cast(Any, app))
            await (await sender.send(batched, records))
            # Where aiokafka's own send puts each key, one record at a time.
            chosen = {}
            for key in keys:
                meta = await producer.send_and_wait(single, b"x", key=key)
                chosen[key] = meta.partition
            return chosen
        finally:
            await producer.stop()

    chosen = asyncio.run(scenario())
    assert len(set(chosen.values())) > 1  # the keys spread: the test can tell partitions apart
    got: dict[int, list[Any]] = defaultdict(list)
    for rec in read_topic(batched, expect=len(records)):  # in (partition, offset) order
        got[rec.partition].append(rec)
    assert sum(len(v) for v in got.values()) == len(records)
    seen: dict[bytes, list[bytes]] = defaultdict(list)
    for partition, recs in got.items():
        for rec in recs:
            if rec.key is None:
                continue
            assert chosen[rec.key] == partition, rec.key
            seen[rec.key].append(rec.value)
    for i, key in enumerate(keys):
        # in order within the key's partition, each once
        assert [v.split(b"|")[0] for v in seen[key]] == [
            f"{key.decode()}#{r}".encode() for r in range(3)
        ]
        wanted = [("ingested_at", str(1000 + i).encode())] if i % 2 else []
        for rec in got[chosen[key]]:
            if rec.key == key:
                assert list(rec.headers) == wanted
    unkeyed = sorted(rec.value for recs in got.values() for rec in recs if rec.key is None)
    assert unkeyed == [f"unkeyed#{i}".encode() for i in range(3)]
