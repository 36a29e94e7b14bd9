"""The processor's consumer counts only the acks of processed messages (no I/O: the app
is built, never started)."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP
from faust.types.tuples import ConsumerMessage

from services.processor.app import build_app
from services.processor.faust_compat.consumer import (
    FETCH_IDLE_WAIT_MS,
    FETCH_MAX_WAIT_MS,
    ContiguousCommitConsumer,
    adapt_fetch_wait,
    processed,
)
from services.runtime.settings import Settings


def consumer_for(topic: str) -> Any:
    settings = Settings()
    app = build_app(settings, settings.rules(), web_port=0)
    consumer = app.consumer
    assert isinstance(consumer, ContiguousCommitConsumer)
    app.topics.acking_topics.add(topic)  # what the conductor does when it subscribes
    consumer._committed_offset[TP(topic, 0)] = 10
    return app, consumer


def message(topic: str, offset: int) -> ConsumerMessage:
    return ConsumerMessage(topic, 0, offset, 0.0, 0, None, b"k", b"v", None)


def test_only_acks_of_processed_messages_are_committed() -> None:
    topic = "ticks-offsets-test"
    app, consumer = consumer_for(topic)
    skipped = message(topic, 10)  # a stream skipped it (older generation, flow stopped)
    consumer.track_message(skipped)
    assert skipped.ack(consumer) is False
    assert skipped.acked  # settled: a stop's wait_empty does not wait for it
    assert skipped not in consumer.unacked
    assert consumer._new_offset(TP(topic, 0)) is None
    # Processed ones count, from the committed offset on only.
    later = [message(topic, offset) for offset in (11, 12)]
    for m in later:
        processed(app, m)
        assert m.ack(consumer) is True
    assert consumer._new_offset(TP(topic, 0)) is None  # 10 itself was never processed
    again = message(topic, 10)  # refetched and processed this time
    processed(app, again)
    assert again.ack(consumer) is True
    assert consumer._new_offset(TP(topic, 0)) == 13


def test_a_jump_in_fetched_offsets_is_not_counted_as_processed() -> None:
    topic = "ticks-offsets-test"
    app, consumer = consumer_for(topic)
    asyncio.run(consumer._add_gap(TP(topic, 0), 10, 20))
    m = message(topic, 21)
    processed(app, m)
    m.ack(consumer)
    assert consumer._new_offset(TP(topic, 0)) is None


def test_the_aiokafka_consumer_waits_at_most_fetch_max_wait_ms_for_records() -> None:
    app, consumer = consumer_for("ticks-offsets-test")

    async def create() -> Any:
        # aiokafka's consumer takes the running loop; it is created, never started.
        return consumer._thread._create_worker_consumer(app.transport)

    aiokafka_consumer = asyncio.run(create())
    # faust's own 1,500 ms would hold new records behind a fetch that left them out.
    assert aiokafka_consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 25


class FakeFetcher:
    """The three names of aiokafka's Fetcher that `adapt_fetch_wait` uses; a request
    round records the wait it was built with."""

    def __init__(self) -> None:
        self._records: dict[TP, object] = {}
        self._fetch_max_wait_ms = 1500
        self.built: list[int] = []

    def _get_actions_per_node(self, assignment: object) -> str:
        self.built.append(self._fetch_max_wait_ms)
        return f"actions for {assignment}"


def test_a_fetch_is_held_long_only_when_every_fetched_record_was_consumed() -> None:
    fetcher = FakeFetcher()
    adapt_fetch_wait(fetcher, FETCH_MAX_WAIT_MS, FETCH_IDLE_WAIT_MS)
    assert fetcher._get_actions_per_node("a") == "actions for a"
    # A partition's records still being handed over: it is left out of the request, so
    # the request must come back soon for it.
    fetcher._records[TP("ticks", 0)] = object()
    fetcher._get_actions_per_node("a")
    fetcher._records.clear()
    fetcher._get_actions_per_node("a")
    assert fetcher.built == [FETCH_IDLE_WAIT_MS, FETCH_MAX_WAIT_MS, FETCH_IDLE_WAIT_MS]
    assert FETCH_MAX_WAIT_MS < FETCH_IDLE_WAIT_MS


def test_a_seek_runs_in_the_consumer_thread_not_the_event_loops() -> None:
    """aiokafka's seek deletes an entry of the fetcher's records dict that the consumer's
    own thread may be iterating: it must be queued to that thread, never called across."""
    _, consumer = consumer_for("ticks-offsets-seek")
    calls: list[tuple[str, Any]] = []

    class Thread:
        inside = False

        def seek(self, partition: TP, offset: int) -> None:
            calls.append(("seek in thread" if self.inside else "seek across", (partition, offset)))

        async def call_thread(self, fun: Any) -> Any:
            self.inside = True
            try:
                return await fun()
            finally:
                self.inside = False

    consumer._thread = Thread()
    asyncio.run(consumer.seek(TP("ticks-offsets-seek", 0), 42))
    assert calls == [("seek in thread", (TP("ticks-offsets-seek", 0), 42))]
    assert consumer._read_offset[TP("ticks-offsets-seek", 0)] == 42
