"""The processor's `LevelFeed` on the real Kafka: the compacted levels topic read whole at
start (ready only once read up to its end offsets), then followed; a tombstone disarms,
a restarted feed holds what the topic holds (a deleted level does not come back)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from kafka import KafkaProducer

from schemas.level import Level
from services.processor.levels import LevelFeed
from services.runtime.kafka_admin import ensure_levels_topic
from services.runtime.settings import Settings
from tests.support.wait import wait_for_async

pytestmark = pytest.mark.integration
SUB = "0123456789abcdef"


def level(level_id: str, price: float) -> bytes:
    spec = {"level_id": level_id, "symbol": "2513.HK", "above": price, "subscription_id": SUB}
    return Level.model_validate(spec).model_dump_json().encode()


def armed(feed: LevelFeed) -> dict[str, float]:
    return {lv.level_id: lv.price for lv in feed.book.levels()}


async def until(what: str, check: Callable[[], bool], timeout_s: float = 10.0) -> float:
    """Seconds until `check` holds (polled at most 10 ms apart); fails after `timeout_s`."""
    started = time.monotonic()
    await wait_for_async(what, check, timeout_s, max_poll_s=0.01)
    return time.monotonic() - started


def test_the_feed_reads_the_topic_whole_then_follows_it(
    settings: Callable[..., Settings],
) -> None:
    s = settings(partitions=3)
    ensure_levels_topic(s)
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")

    def send(key: str, value: bytes | None) -> None:
        producer.send(s.levels_topic, key=key.encode(), value=value).get(timeout=10)

    # Before the worker starts: two levels, one changed, one deleted, many others.
    for n in range(300):
        send(f"bulk-{n:03d}", level(f"bulk-{n:03d}", 100.0 + n))
    send("L1", level("L1", 400.0))
    send("L2", level("L2", 500.0))
    send("L1", level("L1", 450.0))
    send("L2", None)

    async def scenario() -> None:
        feed = LevelFeed(s.kafka_bootstrap, s.levels_topic)
        task = asyncio.create_task(feed.run())
        try:
            await asyncio.wait_for(feed.wait_ready(), 30)
            held = armed(feed)
            assert len(held) == 301
            assert held["L1"] == 450.0
            assert "L2" not in held
            # Followed: a new level armed and a delete disarmed, each within a second.
            send("L3", level("L3", 600.0))
            assert await until("L3 armed", lambda: "L3" in feed.book) < 1.0
            send("L1", None)
            assert await until("L1 disarmed", lambda: "L1" not in feed.book) < 1.0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # A restarted worker: the topic read again gives the same levels, L1 and L2 gone.
        again = LevelFeed(s.kafka_bootstrap, s.levels_topic)
        task = asyncio.create_task(again.run())
        try:
            await asyncio.wait_for(again.wait_ready(), 30)
            assert armed(again) == armed(feed)
            assert "L1" not in again.book
            assert "L2" not in again.book
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        producer.close()


def test_an_empty_topic_is_read_at_once(settings: Callable[..., Settings]) -> None:
    s = settings(partitions=3)
    ensure_levels_topic(s)

    async def scenario() -> None:
        feed = LevelFeed(s.kafka_bootstrap, s.levels_topic)
        task = asyncio.create_task(feed.run())
        try:
            await asyncio.wait_for(feed.wait_ready(), 30)
            assert len(feed.book) == 0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
