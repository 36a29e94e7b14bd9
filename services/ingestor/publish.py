"""Sending ticks and dead letters to Kafka with an idempotent, all-replica-acked producer."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from schemas.bar import Bar
from schemas.dead_letter import DeadLetter
from schemas.tick import Tick
from schemas.topics import DLQ_REASON_HEADER
from services.ingestor.metrics import IngestMetrics
from services.runtime.kafka_admin import BrokerUnavailableError
from services.runtime.settings import Settings

log = logging.getLogger("marketsignal.ingestor")


def compression(name: str | None) -> str | None:
    """An empty or "none" setting means no compression (an env var cannot say None)."""
    if name is None or name.strip().lower() in ("", "none"):
        return None
    return name.strip().lower()


class Publisher:
    """Keys ticks by symbol, so one symbol's ticks stay in order on one partition."""

    def __init__(self, settings: Settings, metrics: IngestMetrics | None = None) -> None:
        self.metrics = metrics
        self.ticks_topic = settings.ticks_topic
        self.dlq_topic = settings.dlq_topic
        self.failed = 0
        self.first_error: str | None = None
        # Sent and not yet acknowledged: what a bounded source waits on (back-pressure).
        self._sent = 0
        self._done = 0
        try:
            self.producer = KafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                bootstrap_timeout_ms=settings.kafka_bootstrap_timeout_ms,
                client_id=f"{settings.namespace}marketsignal-ingestor",
                acks="all",
                enable_idempotence=True,
                linger_ms=settings.ingest_linger_ms,
                batch_size=settings.ingest_batch_bytes,
                compression_type=compression(settings.ingest_compression),
            )
        except KafkaError as exc:
            raise BrokerUnavailableError(
                f"Kafka at {settings.kafka_bootstrap} is not reachable ({exc}); "
                "start the local stack with `make stack-up`"
            ) from None

    def tick(self, tick: Tick) -> None:
        self._send(self.ticks_topic, tick.symbol.encode(), tick.model_dump_json().encode(), None)

    def bar(self, bar: Bar, topic: str) -> None:
        """A daily bar to the history topic, keyed by symbol like the ticks."""
        self._send(topic, bar.symbol.encode(), bar.model_dump_json().encode(), None)

    def dead_letter(self, dead: DeadLetter) -> None:
        key = dead.symbol.encode() if dead.symbol else None
        headers = [(DLQ_REASON_HEADER, dead.reason.encode())]
        self._send(self.dlq_topic, key, dead.model_dump_json().encode(), headers)

    def _send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> None:
        future = self.producer.send(topic, key=key, value=value, headers=headers)
        self._sent += 1
        future.add_both(self._settled)
        future.add_errback(self._failed)
        if self.metrics is not None:
            metrics, is_ticks, sent = self.metrics, topic == self.ticks_topic, time.perf_counter()
            future.add_callback(lambda _md: metrics.acked(is_ticks, time.perf_counter() - sent))

    def _settled(self, _result: Any) -> None:
        # On the producer's I/O thread; only this thread writes _done.
        self._done += 1

    @property
    def in_flight(self) -> int:
        return self._sent - self._done

    def _failed(self, exc: Any) -> None:
        # Runs on the producer's I/O thread: count and remember, the caller reports.
        self.failed += 1
        if self.metrics is not None:
            self.metrics.producer_errors.inc()
        if self.first_error is None:
            self.first_error = str(exc)
            log.error("delivery failed: %s", exc)

    def flush(self, timeout_s: float | None = None) -> None:
        self.producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        self.producer.close(timeout=timeout_s)
