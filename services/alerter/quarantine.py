"""Values on `signals` that are not signals, kept on `signals.dlq` for whoever must fix them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from schemas.dead_letter import DeadLetter, quote_raw
from schemas.topics import DLQ_REASON_HEADER
from services.alerter.relay import Rejected
from services.runtime.kafka_admin import durable_producer
from services.runtime.settings import Settings

# Generous for a broker that is up; a stuck one ends the run, and the batch is replayed.
SEND_TIMEOUT_S = 30.0


class KafkaQuarantine:
    def __init__(self, settings: Settings, now: Callable[[], datetime]) -> None:
        self.topic = settings.signals_dlq_topic
        self.now = now
        self.producer = durable_producer(settings, "alerter-dlq")

    def put(self, rejected: list[Rejected]) -> None:
        """Send and wait: the caller commits the batch's offsets right after."""
        futures = []
        for item in rejected:
            rec = item.record
            dead = DeadLetter(
                reason="malformed",
                detail=item.detail,
                raw=quote_raw(rec.value),
                source=f"{rec.topic}[{rec.partition}]@{rec.offset}",
                received_at=self.now(),
            )
            futures.append(
                self.producer.send(
                    self.topic,
                    key=rec.key,
                    value=dead.model_dump_json().encode(),
                    headers=[(DLQ_REASON_HEADER, b"malformed")],
                )
            )
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_S)

    def close(self) -> None:
        self.producer.close(timeout=5)
