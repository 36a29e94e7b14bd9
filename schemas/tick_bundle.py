"""A record on `ticks`: one tick, or a bundle of ticks that share the record's partition.

faust-streaming pays about 60 us per Kafka record whatever it holds; a tick costs our
own code a few. A bundle (a JSON array of ticks) pays that once for many ticks. Every
tick in a bundle must be one that would go to the record's partition on its own: its
symbol's murmur2 hash (Kafka's default partitioner, as for single ticks keyed by
symbol) modulo the topic's partition count. So a symbol's state lives where it always
does, and single and bundled records can be mixed on one topic.

A bundle record's key is null, or a symbol that every tick in it has. The JSON Schema
cannot say "hashes to the record's partition": the processor checks it and dead-letters
a bundle that breaks it, whole. Positions: a tick's place in the topic is (offset,
index in the bundle); a single-tick record's tick has index 0.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiokafka.partitioner import DefaultPartitioner
from pydantic import Field, TypeAdapter

from schemas.tick import Tick

TickBundle = Annotated[list[Tick], Field(min_length=1)]
TickRecord = Tick | TickBundle

_PARTITIONER = DefaultPartitioner()


def partition_of(symbol: str, partitions: int) -> int:
    """The `ticks` partition of a symbol: what Kafka's default partitioner gives its key."""
    every = list(range(partitions))
    return int(_PARTITIONER(symbol.encode(), every, every))


def tick_record_schema() -> dict[str, Any]:
    schema = TypeAdapter(TickRecord).json_schema()
    schema["title"] = "TickRecord"
    schema["description"] = (
        "A record on the ticks topic: one tick, or a non-empty JSON array of ticks (a "
        "bundle) whose symbols all hash (murmur2, Kafka's default partitioner) to the "
        "record's partition. A bundle's record key is null or the one symbol of all its "
        "ticks."
    )
    return schema
