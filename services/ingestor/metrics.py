"""The ingestor's metrics, in a registry its `run` creates and passes down.

The ingestor is a batch job: its metrics are served while it runs (scrape interval 5 s
in deploy/prometheus), so a replay shorter than that may show only in the processor's
and alerter's metrics. Counters restart at 0 with each run, which `rate()` and
`increase()` handle as a counter reset.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from schemas.dead_letter import DeadLetter
from schemas.tick import Tick
from services.ingestor.ingest import Sink

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


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "marketsignal_ingest_ticks_received",
            "Feed lines read by the ingestor (valid or not)",
            registry=registry,
        )
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

    def acked(self, topic_is_ticks: bool, seconds: float) -> None:
        """Called on the producer's I/O thread when the broker acknowledged a record."""
        self.publish_latency.observe(seconds)
        if topic_is_ticks:
            self.published.inc()


class MeteredSink:
    """Counts what the replay loop hands to the publisher: every line is one or the other."""

    def __init__(self, sink: Sink, metrics: IngestMetrics) -> None:
        self.sink = sink
        self.metrics = metrics

    def tick(self, tick: Tick) -> None:
        self.metrics.received.inc()
        self.sink.tick(tick)

    def dead_letter(self, dead: DeadLetter) -> None:
        self.metrics.received.inc()
        self.metrics.dead_letters.labels(dead.reason).inc()
        self.sink.dead_letter(dead)
