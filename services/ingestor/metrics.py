"""The ingestor's metrics, in a registry its `run` creates and passes down.

The ingestor is a batch job: its metrics are served while it runs (scrape interval 5 s
in deploy/prometheus), so a replay shorter than that may show only in the processor's
and alerter's metrics. Counters restart at 0 with each run, which `rate()` and
`increase()` handle as a counter reset.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.dead_letter import DeadLetter
from services.ingestor.ingest import Sink
from services.ingestor.screening import Accepted

# Time from send to the broker's acknowledgement (acks=all, idempotent producer, linger
# 50 ms by default): a few ms on a quiet local broker, up to the request timeout when
# the broker struggles; millisecond buckets keep both ends visible.
PUBLISH_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


# The throughput gauge averages over this many seconds (Prometheus' rate() on the
# counters does the same over any window; the gauge is for a quick look at /metrics).
THROUGHPUT_WINDOW_S = 10.0


class Throughput:
    """Lines per second over the last THROUGHPUT_WINDOW_S, sampled at most once a second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.count = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        self.count += n
        now = self.clock()
        samples = self._samples
        if not samples or now - samples[-1][0] >= 1.0:
            with self._lock:
                samples.append((now, self.count))
                while samples and now - samples[0][0] > THROUGHPUT_WINDOW_S:
                    samples.popleft()

    def rate(self) -> float:
        now = float(self.clock())
        with self._lock:
            past = [s for s in self._samples if now - s[0] <= THROUGHPUT_WINDOW_S]
        if not past:
            return 0.0
        first_at, first_count = past[0]
        elapsed = max(now - first_at, 1.0)
        return (self.count - first_count) / elapsed


class _Received(Collector):
    """The lines-read counter, read from a plain int at scrape time: the replay loop
    adds one a line without a lock (a Counter's inc takes one)."""

    def __init__(self, metrics: IngestMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "marketsignal_ingest_ticks_received",
            "Feed lines read by the ingestor (valid or not)",
            value=self.metrics.throughput.count,
        )


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # Written by the replay loop once a line, read by the metrics server's thread:
        # plain attributes, exported when scraped.
        self.last_ts_us = 0
        self.last_seen_s = 0.0
        self.throughput = Throughput()
        registry.register(_Received(self))
        self.published = Counter(
            "marketsignal_ingest_ticks_published",
            "Ticks acknowledged by Kafka on the ticks topic",
            registry=registry,
        )
        self.dead_letters = Counter(
            "marketsignal_ingest_dead_letters",
            "Lines sent to ticks.dlq, by reason (malformed, late)",
            ["reason"],
            registry=registry,
        )
        for reason in ("malformed", "late"):
            self.dead_letters.labels(reason)  # present at 0, so rate() works from the start
        self.publish_latency = Histogram(
            "marketsignal_ingest_publish_latency_seconds",
            "Time from send to the broker's acknowledgement, per record",
            buckets=PUBLISH_BUCKETS_S,
            registry=registry,
        )
        self.producer_errors = Counter(
            "marketsignal_ingest_producer_errors",
            "Records the producer failed to deliver",
            registry=registry,
        )
        # Long-running sources (standard input, --follow, --ws): is the feed alive?
        Gauge(
            "marketsignal_ingest_throughput_lines_per_second",
            f"Feed lines read per second, over the last {THROUGHPUT_WINDOW_S:g} s",
            registry=registry,
        ).set_function(self.throughput.rate)
        Gauge(
            "marketsignal_ingest_last_tick_timestamp_seconds",
            "Event time (ts) of the last tick handed to Kafka, epoch seconds",
            registry=registry,
        ).set_function(lambda: self.last_ts_us / 1e6)
        Gauge(
            "marketsignal_ingest_last_tick_received_timestamp_seconds",
            "Wall-clock time the last tick was read from the feed, epoch seconds",
            registry=registry,
        ).set_function(lambda: self.last_seen_s)
        self.in_flight = Gauge(
            "marketsignal_ingest_in_flight",
            "Records sent to Kafka and not yet acknowledged (bounded for --ws: back-pressure)",
            registry=registry,
        )
        self.ws_reconnects = Counter(
            "marketsignal_ingest_ws_reconnects",
            "WebSocket reconnect attempts after a drop or a failed connect (--ws)",
            registry=registry,
        )
        self.ws_connected = Gauge(
            "marketsignal_ingest_ws_connected",
            "1 while the WebSocket feed is connected (--ws)",
            registry=registry,
        )
        self.ws_replayed = Counter(
            "marketsignal_ingest_ws_replayed",
            "Messages a server re-sent after a reconnect, recognised and dropped (--ws)",
            registry=registry,
        )

    def acked(self, ticks: int, seconds: float) -> None:
        """Called on the producer's I/O thread when the broker acknowledged a record that
        holds `ticks` ticks (a bundle's length, 1 for a tick alone, 0 off the ticks topic)."""
        self.publish_latency.observe(seconds)
        if ticks:
            self.published.inc(ticks)


class MeteredSink:
    """Counts what the replay loop hands to the publisher: every line is one or the other."""

    def __init__(self, sink: Sink, metrics: IngestMetrics) -> None:
        self.sink = sink
        self.metrics = metrics
        self._add = metrics.throughput.add
        self._tick = sink.tick

    def tick(self, tick: Accepted) -> None:
        metrics = self.metrics
        metrics.last_ts_us = tick.ts_us
        metrics.last_seen_s = time.time()
        self._add()
        self._tick(tick)

    def dead_letter(self, dead: DeadLetter) -> None:
        self.metrics.throughput.add()
        self.metrics.dead_letters.labels(dead.reason).inc()
        self.sink.dead_letter(dead)
