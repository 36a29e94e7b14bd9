"""Sending ticks and dead letters to Kafka with an idempotent, all-replica-acked producer."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from schemas.bar import Bar
from schemas.dead_letter import DeadLetter
from schemas.tick_bundle import partition_of
from schemas.topics import DLQ_REASON_HEADER, INGESTED_AT_HEADER
from services.ingestor.bundling import Bundle, Bundler
from services.ingestor.metrics import IngestMetrics
from services.ingestor.screening import Accepted
from services.runtime.kafka_admin import durable_producer
from services.runtime.settings import Settings

log = logging.getLogger("marketsignal.ingestor")

# No acknowledgement for this long while records wait: the cluster is not taking writes
# (kafka-python retries them silently until its delivery timeout, 2 minutes).
STALL_S = 5.0


def compression(name: str | None) -> str | None:
    """An empty or "none" setting means no compression (an env var cannot say None)."""
    if name is None or name.strip().lower() in ("", "none"):
        return None
    return name.strip().lower()


@dataclass(frozen=True)
class BundleOptions:
    """Ticks per record: a bundle closes after `window_ms`, or at `max_ticks` or
    `max_bytes` of JSON, whichever comes first."""

    window_ms: float = 20.0
    max_ticks: int = 500
    max_bytes: int = 256 * 1024


def linger_ms(settings: Settings, *, bundling: bool) -> int:
    """The producer's linger: as set, else none with bundles (the bundle window did the
    gathering) and 5 ms with one tick per record."""
    if settings.ingest_linger_ms is not None:
        return settings.ingest_linger_ms
    return 0 if bundling else 5


class Publisher:
    """Sends each tick to its symbol's partition (murmur2 of the symbol, as Kafka's default
    partitioner does with the symbol as key), so one symbol's ticks stay in order there.

    With `bundle` set, ticks bound for the same partition within a few milliseconds go
    in one record (`schemas.tick_bundle`): faust pays its per-record cost once for many
    ticks. Bundles close on size in the caller's thread and on time in a flusher thread;
    both send under one lock, so a partition's records leave in the order they closed.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: IngestMetrics | None = None,
        bundle: BundleOptions | None = None,
    ) -> None:
        self.metrics = metrics
        self.bundle = bundle  # None: one tick per record
        self.ticks_topic = settings.ticks_topic
        self.dlq_topic = settings.dlq_topic
        self.failed = 0
        self.first_error: str | None = None
        # Sent and not yet acknowledged: what a bounded source waits on (back-pressure).
        self._sent = 0
        self._done = 0
        # The stall probe's view (its own thread): acknowledgements seen, and since when.
        self._probe_done = 0
        self._probe_since = time.monotonic()
        self.producer = durable_producer(
            settings,
            "ingestor",
            linger_ms=linger_ms(settings, bundling=bundle is not None),
            batch_size=settings.ingest_batch_bytes,
            compression_type=compression(settings.ingest_compression),
        )
        self._bundler: Bundler | None = None
        # A plain lock under the condition: taken once a tick, directly (`_mutex`) where
        # no wait or notify is needed; the condition's own `with` adds Python frames.
        self._mutex = threading.Lock()
        self._lock = threading.Condition(self._mutex)
        self._closing = False
        self._flusher: threading.Thread | None = None
        # Each symbol's partition, named in every send: kafka-python's partitioner would
        # hash the key again in pure Python for each record.
        self._home: dict[str, int] = {}
        self.partitions: int | None = None
        if bundle is not None:
            self._partitions()
            self._bundler = Bundler(bundle.window_ms / 1000, bundle.max_ticks, bundle.max_bytes)
            self._flusher = threading.Thread(
                target=self._flush_on_time, name="bundle-flusher", daemon=True
            )
            self._flusher.start()

    def _partitions(self) -> int:
        """The topic's real partition count, read once: a bundle names its partition."""
        if self.partitions is None:
            self.partitions = len(self.producer.partitions_for(self.ticks_topic))
        return self.partitions

    def tick(self, tick: Accepted) -> None:
        symbol, _ts_us, value = tick
        home = self._home.get(symbol)
        if home is None:
            home = self._home[symbol] = partition_of(symbol, self._partitions())
        bundler = self._bundler
        if bundler is None:
            # Keyed by symbol as before, on the partition the key's hash gives.
            self._send(self.ticks_topic, symbol.encode(), value, None, partition=home, ticks=1)
            return
        with self._mutex:
            self._sent += 1
            if bundler.append(home, symbol, value):
                return
            idle = not bundler.open
            for full in bundler.add(home, symbol, value, time.monotonic(), time.time_ns() // 10**6):
                self._send_bundle(full)
            if idle and bundler.open:
                self._lock.notify()  # the flusher sleeps while no bundle is open

    def _send_bundle(self, bundle: Bundle) -> None:
        # The bundle's ingest time is its first tick's: a latency read from it includes
        # the bundle window.
        headers = [(INGESTED_AT_HEADER, str(bundle.first_ms).encode())]
        try:
            self._send(
                self.ticks_topic,
                bundle.key(),
                bundle.value(),
                headers,
                partition=bundle.partition,
                ticks=len(bundle.values),
                counted=True,
            )
        except Exception as exc:  # e.g. the buffer stayed full: counted, reported once
            self._done += len(bundle.values)
            self._failed(exc)

    def _flush_on_time(self) -> None:
        bundler = self._bundler
        assert bundler is not None
        with self._lock:
            while not self._closing:
                due_at = bundler.next_due()
                if due_at is None:
                    self._lock.wait()
                    continue
                left = due_at - time.monotonic()
                if left > 0:
                    self._lock.wait(left)
                    continue
                for bundle in bundler.due(time.monotonic()):
                    self._send_bundle(bundle)

    def _send_open_bundles(self) -> None:
        if self._bundler is not None:
            with self._lock:
                for bundle in self._bundler.drain():
                    self._send_bundle(bundle)

    def bar(self, bar: Bar, topic: str) -> None:
        """A daily bar to the history topic, keyed by symbol like the ticks."""
        self._send(topic, bar.symbol.encode(), bar.model_dump_json().encode(), None)

    def dead_letter(self, dead: DeadLetter) -> None:
        key = dead.symbol.encode() if dead.symbol else None
        headers = [(DLQ_REASON_HEADER, dead.reason.encode())]
        self._send(self.dlq_topic, key, dead.model_dump_json().encode(), headers)

    def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None,
        *,
        partition: int | None = None,
        ticks: int = 0,
        counted: bool = False,
    ) -> None:
        """`ticks`: the ticks the record holds (0 off the ticks topic); `counted`: they
        were counted as sent when they joined their bundle."""
        future = self.producer.send(
            topic, key=key, value=value, headers=headers, partition=partition
        )
        if not counted:
            self._sent += 1
        # One callable for both outcomes: each registration takes the future's lock.
        future.add_both(_Settle(self, ticks if counted else 1, ticks, time.perf_counter()))

    def stalled(self) -> str | None:
        """What /readyz says while records wait and Kafka acknowledges none of them for
        STALL_S or more (called every few seconds by services/runtime/write_health.py);
        None otherwise. The ticks wait in the producer's buffer, in order, until the
        cluster takes them: nothing is dropped."""
        now = time.monotonic()
        if self.metrics is not None:
            self.metrics.in_flight.set(self.in_flight)
        if self.in_flight <= 0 or self._done != self._probe_done:
            self._probe_done, self._probe_since = self._done, now
            return None
        waited = now - self._probe_since
        if waited < STALL_S:
            return None
        return (
            f"Kafka has acknowledged none of the {self.in_flight} ticks and dead letters "
            f"waiting in the producer for {waited:.0f} s (acks=all: too few in-sync "
            "replicas or no leader); they stay buffered, in order, and are retried"
        )

    @property
    def in_flight(self) -> int:
        """Ticks and dead letters handed over and not yet acknowledged (open bundles too)."""
        return self._sent - self._done

    def _settled(self, done: int, ticks: int, sent: float, result: Any) -> None:
        # On the producer's I/O thread (or at once, for a future already done).
        self._done += done
        if isinstance(result, BaseException):
            self._failed(result)
        elif self.metrics is not None:
            self.metrics.acked(ticks, time.perf_counter() - sent)

    def _failed(self, exc: Any) -> None:
        # Runs on the producer's I/O thread: count and remember, the caller reports.
        self.failed += 1
        if self.metrics is not None:
            self.metrics.producer_errors.inc()
        if self.first_error is None:
            self.first_error = str(exc)
            log.error("delivery failed: %s", exc)

    def flush(self, timeout_s: float | None = None) -> None:
        self._send_open_bundles()
        self.producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        self._send_open_bundles()
        if self._flusher is not None:
            with self._lock:
                self._closing = True
                self._lock.notify()
            self._flusher.join(timeout_s)
        self.producer.close(timeout=timeout_s)


class _Settle:
    """A record's acknowledgement or failure: `done` ticks or records are no longer in
    flight, `ticks` are published (for the metrics), `sent` is when it was handed over."""

    __slots__ = ("done", "publisher", "sent", "ticks")

    def __init__(self, publisher: Publisher, done: int, ticks: int, sent: float) -> None:
        self.publisher = publisher
        self.done = done
        self.ticks = ticks
        self.sent = sent

    def __call__(self, result: Any) -> None:
        self.publisher._settled(self.done, self.ticks, self.sent, result)
