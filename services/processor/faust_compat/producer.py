"""aiokafka's producer inside faust's, for aiokafka's batch API.

faust's `Producer.send` takes one record; aiokafka's `create_batch`/`send_batch` send
a partition's records (a changelog's, a batch's signals) as one batch with one future,
and `partition_for` names the partition `send` would have chosen. Reaching the aiokafka
producer faust started keeps those batches on the same connection, queue and order as
every other send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


def partition_for(producer: Any, topic: str, key: bytes | None) -> int:
    """The partition aiokafka's `send` would give a record of `key` on `topic` (its
    partitioner over the topic's partitions; the metadata must be known)."""
    return cast(int, producer._partition(topic, None, key, None, key, None))


def aiokafka_producer(app: faust.App) -> Any:
    """The started aiokafka producer under `app.producer` (faust raises NotReady before
    the producer service has started)."""
    return cast(Any, app.producer)._ensure_producer()


class IdempotentProducer(faust_aiokafka.Producer):
    """faust's producer, idempotent outside transactions too.

    faust asks aiokafka for idempotence only inside a transaction (exactly_once); at
    least once, a send retried after a leader election (its first attempt written, the
    answer lost with the old leader) would write the record twice: the same signal or
    changelog entry in two offsets. Idempotence makes the broker drop the retry.
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


def install_producer(app: faust.App) -> None:
    """Make `app` create its producer from `IdempotentProducer` (before first use)."""
    cast(Any, app).transport.Producer = IdempotentProducer
