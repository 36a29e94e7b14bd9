"""The real local stack as tests see it: settings in a namespace, reading a topic back.

The fixtures over these (tests/support/fixtures.py) give every test its own namespace, so
its topics, consumer groups and Redis keys never meet another test's: tests can share one
broker, run in any order, or in parallel (pytest-xdist).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import redis
from kafka import KafkaConsumer, TopicPartition

from services.runtime.kafka_admin import ensure_topics
from services.runtime.settings import Settings
from tests.support.wait import wait_for

SettingsFactory = Callable[..., Settings]
Grant = Callable[..., str]


def read_all(
    settings: Settings, topic: str, *, expect: int | None = None, timeout_s: float = 30.0
) -> list[Any]:
    """Every record of `topic` from the start, read with no consumer group.

    Reads until the end offsets taken at the start are reached (and, with `expect`, until
    that many records arrived), so the answer is exact, not "whatever came in N seconds".
    """
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    try:
        partitions = wait_for(
            f"topic {topic} to exist",
            lambda: consumer.partitions_for_topic(topic),
            timeout_s,
            max_poll_s=0.1,
        )
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        records: list[Any] = []

        def read_to_end() -> bool:
            # poll() blocks up to 200 ms itself: the wait needs no sleep of its own.
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            at_end = all(consumer.position(tp) >= ends[tp] for tp in tps)
            return at_end and (expect is None or len(records) >= expect)

        # A short read is not this helper's failure: the caller asserts on what arrived.
        with contextlib.suppress(AssertionError):
            wait_for(f"the records of {topic}", read_to_end, timeout_s, max_poll_s=0)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def allow(redis_client: redis.Redis, name: str, *commands: str) -> None:
    """Grant a `restricted` user `commands` it was denied."""
    redis_client.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", name, *(f"+{c}" for c in commands)
    )


def with_signals_topic(s: Settings) -> Settings:
    """`s`, its signals topic created with all its partitions (the alerter's input)."""
    ensure_topics(s, [s.signals_topic], s.partitions)
    return s
