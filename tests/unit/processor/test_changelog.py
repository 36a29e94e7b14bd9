"""The processor's state write with a fake table and producer: a batch's states go as one
producer batch per changelog partition (each key on its murmur2 partition, its JSON as
recovery reads it), and the in-memory table changes only once every batch is acknowledged,
never after a failed one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from services.processor.tables import ChangelogState, StateTable
from tests.unit.stage_helpers import PendingAcks

PARTITIONS = 6


class Changelog:
    def __init__(self) -> None:
        self.name = "app-symbol-state-changelog"

    def get_topic_name(self) -> str:
        return self.name


class Table:
    """What ChangelogState uses of a faust table: its changelog, partitioner and store."""

    def __init__(self) -> None:
        self.changelog_topic = Changelog()
        self.data: dict[bytes, Any] = {}
        self.hashed: list[bytes] = []

    def partition_for_key(self, key: bytes) -> int:
        self.hashed.append(key)
        n = PARTITIONS
        return int(StateTable._partitioner(key, list(range(n)), list(range(n))))

    def get(self, key: bytes) -> Any:
        return self.data.get(key)


class Producer(PendingAcks):
    """Batches sent, and acknowledgements the test gives (or fails)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []

    async def send_batch(
        self, topic: str, partition: int, records: list[tuple[bytes, bytes]]
    ) -> asyncio.Future[None]:
        self.batches.append((topic, partition, list(records)))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


STATES = {f"{i:04d}.HK": {"p": 0, "o": i, "tracker": {"high": float(i)}} for i in range(40)}


async def write_acknowledged(
    state: ChangelogState,
    producer: Producer,
    states: dict[str, dict[str, Any]],
    error: Exception | None = None,
) -> None:
    """`state.write(states)`, its batches acknowledged (or failed) once they are sent."""
    task = asyncio.ensure_future(state.write(states))
    await asyncio.sleep(0)
    producer.acknowledge(error)
    await task


def test_one_batch_per_partition_each_key_on_its_own_partition() -> None:
    table, producer = Table(), Producer()
    state = ChangelogState(table, producer.send_batch)

    asyncio.run(write_acknowledged(state, producer, STATES))
    partitions = [p for _topic, p, _records in producer.batches]
    assert len(partitions) == len(set(partitions))  # one batch per partition
    assert {t for t, _p, _r in producer.batches} == {"app-symbol-state-changelog"}
    sent = {key: (p, value) for _t, p, records in producer.batches for key, value in records}
    assert set(sent) == {k.encode() for k in STATES}
    for key, state_dict in STATES.items():
        partition, value = sent[key.encode()]
        assert partition == table.partition_for_key(key.encode())
        assert orjson.loads(value) == state_dict
    assert table.data == {k.encode(): v for k, v in STATES.items()}


def test_the_table_changes_only_after_every_batch_is_acknowledged() -> None:
    table, producer = Table(), Producer()
    state = ChangelogState(table, producer.send_batch)

    async def write() -> None:
        task = asyncio.ensure_future(state.write(STATES))
        for _ in range(3):
            await asyncio.sleep(0)
        assert producer.batches
        assert table.data == {}  # sent, not acknowledged: nothing written
        producer.acks[0].set_result(None)
        for _ in range(3):
            await asyncio.sleep(0)
        assert table.data == {}  # one partition acknowledged is not enough
        producer.acknowledge()
        await task

    asyncio.run(write())
    assert len(table.data) == len(STATES)


def test_a_failed_batch_writes_nothing() -> None:
    table, producer = Table(), Producer()
    state = ChangelogState(table, producer.send_batch)

    with pytest.raises(RuntimeError, match="broker gone"):
        asyncio.run(write_acknowledged(state, producer, STATES, RuntimeError("broker gone")))
    assert table.data == {}


def test_a_key_is_hashed_once_and_no_states_send_nothing() -> None:
    table, producer = Table(), Producer()
    state = ChangelogState(table, producer.send_batch)

    async def twice() -> None:
        for _ in range(2):
            await write_acknowledged(state, producer, {"0001.HK": {"p": 0, "o": 1}})
        await state.write({})

    asyncio.run(twice())
    assert table.hashed == [b"0001.HK"]
    assert len(producer.batches) == 2
