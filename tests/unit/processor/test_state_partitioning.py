"""Processor state lands on the partition of its key's ticks, whichever client hashed them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2

from services.processor.tables import StateTable


def kafka_python_partition(key: bytes, partitions: int) -> int:
    # What the ingestor's kafka-python producer does for a keyed record (Java-compatible).
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@settings(max_examples=300, deadline=None)
@given(
    key=st.text(alphabet="ABCXYZ0123456789.^_-/", min_size=1, max_size=32),
    partitions=st.integers(min_value=1, max_value=64),
)
def test_changelog_partition_is_the_source_partition(key: str, partitions: int) -> None:
    table = StateTable.__new__(StateTable)
    table.partitions = partitions
    raw = key.encode()
    assert table.partition_for_key(raw) == kafka_python_partition(raw, partitions)
