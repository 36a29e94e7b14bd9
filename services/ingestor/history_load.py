"""Loading daily bars into the processor: a bars file published to `{namespace}history`.

Each valid bar goes to the history topic keyed by symbol, where the processor merges it
into that symbol's state (and its pairs') under the contract's history rules. Loading the
same file twice changes nothing: a date's first bar is the one that counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kafka.errors import KafkaError

from schemas.bar import Bar
from services.ingestor.publish import Publisher
from services.parsing.feed import Format, stdin_text
from services.parsing.history import BadBar, read_bars, read_bars_stream
from services.runtime.kafka_admin import ensure_topics
from services.runtime.lag import caught_up
from services.runtime.settings import Settings

# How often `wait_merged` asks for the processor group's lag.
MERGED_POLL_S = 0.5


def read_bar_file(
    path: Path | None, fmt: Format | None, on_bad: Callable[[BadBar], None]
) -> tuple[list[Bar], int]:
    """The valid bars of `path` (None: standard input) in order, and how many were bad.

    Each bad bar is passed to `on_bad` as it is read. Raises FeedError when the input
    cannot be read as bars at all.
    """
    items = read_bars_stream(stdin_text(), fmt) if path is None else read_bars(path, fmt)
    bars: list[Bar] = []
    bad = 0
    for item in items:
        if isinstance(item, BadBar):
            bad += 1
            on_bad(item)
        else:
            bars.append(item[1])
    return bars, bad


def publish_bars(settings: Settings, bars: list[Bar]) -> str | None:
    """Publish `bars` to the history topic (created if missing), keyed by symbol.

    Returns once every bar is acknowledged or has failed: None if all were delivered,
    else the first delivery error. Raises BrokerUnavailableError when Kafka cannot be
    reached, KafkaError when sending fails.
    """
    ensure_topics(settings, [settings.history_topic], settings.partitions)
    publisher = Publisher(settings)
    try:
        for bar in bars:
            publisher.bar(bar, settings.history_topic)
        publisher.flush()
    except KafkaError:
        publisher.close(timeout_s=1.0)
        raise
    publisher.close()
    return publisher.first_error if publisher.failed else None


def wait_merged(settings: Settings, timeout_s: float) -> bool:
    """Whether the processor group consumes all of the history topic within `timeout_s`."""
    group = settings.processor_consumer_group
    deadline = time.monotonic() + timeout_s
    while not caught_up(settings.kafka_bootstrap, group, [settings.history_topic]):
        if time.monotonic() > deadline:
            return False
        time.sleep(MERGED_POLL_S)
    return True
