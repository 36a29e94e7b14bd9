"""Per-source metrics of a live feed (`--ws`, `--yahoo`, `--akshare`, ...), labelled by
the source's name, and the readiness they imply.

One ingestor runs one source, but dashboards watch many ingestors: the label says which
feed a panel shows (`source="yahoo"`), and the same names serve every source:

- `marketsignal_ingest_source_messages_total{source}`: messages (a WebSocket message, a
  poll's answer) read;
- `..._source_ticks_total{source}`: ticks handed to Kafka;
- `..._source_dead_letters_total{source,reason}`;
- `..._source_reconnects_total{source}`: reconnects after a drop, retries after a failed
  poll;
- `..._source_connected{source}`: 1 while connected (a poller: while its last fetch
  succeeded);
- `..._source_seconds_since_last_message{source}`: computed at scrape, from the start
  until the first message;
- `..._source_sequence_gaps_total{source}`, `..._source_sequence_repeats_total{source}`:
  for a source with sequence numbers (Futu): jumps in the sequence, and messages at or
  below the last one, which are not published.

`readiness` is false, with the reason, while the source is not connected: `/readyz` then
says so (docs/observability.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.dead_letter import DeadLetter
from services.ingestor.ingest import Sink
from services.ingestor.screening import Accepted


class SourceMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        source: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.clock = clock
        # Written by the source's loop, read by the metrics server's thread.
        self._lock = threading.Lock()
        self._connected = False
        self._last_message = clock()
        label = [source]
        self.messages = Counter(
            "marketsignal_ingest_source_messages",
            "Messages (or polls) read from the live source",
            ["source"],
            registry=registry,
        ).labels(*label)
        self.ticks = Counter(
            "marketsignal_ingest_source_ticks",
            "Ticks from the live source handed to Kafka",
            ["source"],
            registry=registry,
        ).labels(*label)
        self._dead = Counter(
            "marketsignal_ingest_source_dead_letters",
            "Dead letters from the live source, by reason",
            ["source", "reason"],
            registry=registry,
        )
        for reason in ("malformed", "late"):
            self._dead.labels(source, reason)  # present at 0, so rate() works from the start
        self.reconnects = Counter(
            "marketsignal_ingest_source_reconnects",
            "Reconnects of the live source after a drop (a poller: retries after a failure)",
            ["source"],
            registry=registry,
        ).labels(*label)
        self._up = Gauge(
            "marketsignal_ingest_source_connected",
            "1 while the live source is connected (a poller: while its last poll succeeded)",
            ["source"],
            registry=registry,
        ).labels(*label)
        self.gaps = Counter(
            "marketsignal_ingest_source_sequence_gaps",
            "Jumps in the live source's sequence numbers (trades missed)",
            ["source"],
            registry=registry,
        ).labels(*label)
        self.repeats = Counter(
            "marketsignal_ingest_source_sequence_repeats",
            "Messages at or below the live source's last sequence number, not published",
            ["source"],
            registry=registry,
        ).labels(*label)
        Gauge(
            "marketsignal_ingest_source_seconds_since_last_message",
            "Seconds since the live source's last message (since the start before the first)",
            ["source"],
            registry=registry,
        ).labels(*label).set_function(self.silence_s)

    def message(self) -> None:
        self.messages.inc()
        self._last_message = self.clock()

    def tick(self) -> None:
        self.ticks.inc()

    def dead_letter(self, dead: DeadLetter) -> None:
        self._dead.labels(self.source, dead.reason).inc()

    def connected(self) -> None:
        with self._lock:
            self._connected = True
        self._up.set(1)

    def disconnected(self) -> None:
        with self._lock:
            self._connected = False
        self._up.set(0)

    def reconnecting(self) -> None:
        self.reconnects.inc()

    def silence_s(self) -> float:
        return max(0.0, self.clock() - self._last_message)

    def is_connected(self) -> bool:
        with self._lock:
            return self._connected


def readiness(
    base: Callable[[], tuple[bool, str]], source: SourceMetrics
) -> Callable[[], tuple[bool, str]]:
    """Ready when `base` is (the producer connected) and the source is connected."""

    def ready() -> tuple[bool, str]:
        ok, reason = base()
        if not ok:
            return ok, reason
        if not source.is_connected():
            return False, f"{source.source}: not connected to the source"
        return True, f"{reason}; {source.source} connected"

    return ready


class CountedSink:
    """A live source's sink: counts its ticks and dead letters by source, then hands them
    on. Only live sources wear it: a file replay's hot path stays as it was."""

    def __init__(self, sink: Sink, metrics: SourceMetrics) -> None:
        self.sink = sink
        self.metrics = metrics

    def tick(self, tick: Accepted) -> None:
        self.metrics.tick()
        self.sink.tick(tick)

    def dead_letter(self, dead: DeadLetter) -> None:
        self.metrics.dead_letter(dead)
        self.sink.dead_letter(dead)
