"""The alerter's loop: poll a batch of signals, deliver it to Redis, then commit offsets.

Offsets are committed only after Redis holds every alert of the batch, so a crash at
any point replays signals rather than losing them; the delivery's dedupe claim turns
the replay into nothing new. The commit is asynchronous: the next poll does not wait
for the broker's answer (a round trip per batch on the tick-to-alert path), and a
commit that fails or never lands only replays batches Redis already holds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import redis
from kafka.errors import KafkaError
from pydantic import ValidationError

from schemas.alert import Alert
from schemas.signals import SIGNAL_ADAPTER
from services.alerter.delivery import NotReplicated
from services.alerter.metrics import AlertMetrics
from services.runtime.outage import Outage

log = logging.getLogger("marketsignal.alerter")

POLL_TIMEOUT_MS = 500
# Redis down: retry the same batch, backing off to this, never committing past it.
MAX_BACKOFF_S = 5.0
# Between attempts that too few replicas confirmed (each already blocked in WAIT).
NOT_REPLICATED_PAUSE_S = 0.1


@dataclass
class AlertStats:
    consumed: int = 0
    delivered: int = 0
    duplicates: int = 0
    invalid: int = 0

    def render(self) -> str:
        return (
            f"alert: {self.consumed} consumed, {self.delivered} delivered, "
            f"{self.duplicates} duplicates suppressed, {self.invalid} invalid"
        )


class Delivery(Protocol):
    def deliver(self, alerts: list[Alert]) -> list[bool]: ...


class Consumer(Protocol):
    """The part of kafka-python's KafkaConsumer the relay uses."""

    def poll(self, timeout_ms: int = ..., max_records: int | None = ...) -> dict[Any, Any]: ...

    def commit(self) -> Any: ...

    def commit_async(self, offsets: Any = ..., callback: Any = ...) -> Any: ...

    def assignment(self) -> set[Any]: ...


class Rejected(NamedTuple):
    """A consumed value that is not a signal, and why."""

    record: Any
    detail: str


class Quarantine(Protocol):
    """Where rejected values go; `put` returns once they are stored."""

    def put(self, rejected: list[Rejected]) -> None: ...


def alerts_of(records: Iterable[Any], now: datetime) -> tuple[list[Alert], list[Rejected]]:
    """The alerts for a batch of `signals` records, and the records that are not signals."""
    alerts: list[Alert] = []
    rejected: list[Rejected] = []
    for record in records:
        value = record.value
        try:
            if value is None:
                raise ValueError("record has no value")
            signal = SIGNAL_ADAPTER.validate_json(value)
        except (ValidationError, ValueError) as exc:
            detail = str(exc).replace("\n", " ")[:1000]
            log.warning(
                "skipping %s[%s]@%s: not a signal: %s",
                record.topic,
                record.partition,
                record.offset,
                detail,
            )
            rejected.append(Rejected(record, detail))
            continue
        alerts.append(Alert.of(signal, emitted_at=now))
    return alerts, rejected


class AlertRelay:
    def __init__(
        self,
        consumer: Consumer,
        delivery: Delivery,
        quarantine: Quarantine | None = None,
        *,
        batch_max: int = 500,
        commit_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: AlertMetrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.consumer = consumer
        self.delivery = delivery
        self.quarantine = quarantine
        self.batch_max = batch_max
        # At a live pace a batch is a handful of alerts: an offset commit for each is a
        # broker request per batch. A replay of what Redis already holds is dropped by
        # the dedupe claim, so committing at most this often loses nothing and costs at
        # most this long a replay after a crash.
        self.commit_interval_s = commit_interval_s
        self._committed_at: float | None = None
        self._pending_commit = False  # batches delivered since the last commit
        self.clock = clock
        self.now = now
        self.stats = AlertStats()
        self.kafka_outage = Outage(log, "Kafka (polling signals)")
        self.commit_outage = Outage(log, "Kafka (committing offsets)")
        self.redis_outage = Outage(log, "Redis (delivering alerts)", level=logging.ERROR)

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> AlertStats:
        """Relay until `stop` is set or, with `idle_exit_s`, the topic has been quiet that long.

        Quiet is counted from the partition assignment: the group join itself can take
        seconds, and no record can arrive before it.
        """
        idle_since: float | None = None
        if self.metrics is not None:
            self.metrics.ready.set(True, "consuming signals, Redis reachable")
        backoff = 0.1
        uncommitted = False  # a batch delivered since the last synchronous commit
        while not stop.is_set():
            try:
                polled = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=self.batch_max)
            except KafkaError as exc:
                # A broker restart surfaces here (e.g. the committed-offset fetch after a
                # rebalance); nothing was consumed, so waiting and polling again loses nothing.
                # Only errors Kafka itself calls permanent (authorisation, config) end the run.
                if not exc.retriable:
                    raise
                if self.metrics is not None:
                    self.metrics.kafka_failed(exc)
                self.kafka_outage.failed(exc)
                if stop.wait(backoff):
                    break
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            if backoff > 0.1 and self.metrics is not None:
                self.metrics.ready.set(True, "consuming signals, Redis reachable")
            backoff = 0.1
            self.kafka_outage.ok()
            records = [rec for batch in polled.values() for rec in batch]
            if records:
                idle_since = None
                if not self._handle(records, stop):
                    # Not delivered: the consumer's position is past records Redis does
                    # not hold, so no commit of it, not even the final one below.
                    uncommitted = False
                    break
                uncommitted = True
                continue
            self._commit_due()
            if idle_exit_s is None:
                continue
            if not self.consumer.assignment():
                idle_since = None
                continue
            now = self.clock()
            if idle_since is None:
                idle_since = now
            elif now - idle_since >= idle_exit_s:
                break
        if uncommitted:
            # Every polled record is delivered: a clean stop leaves nothing to replay.
            self._commit(sync=True)
        return self.stats

    def _handle(self, records: list[Any], stop: threading.Event) -> bool:
        """Deliver then commit one batch; False if stopped before Redis took it."""
        self.stats.consumed += len(records)
        alerts, rejected = alerts_of(records, self.now())
        self.stats.invalid += len(rejected)
        if rejected and self.quarantine is not None:
            # Stored before the commit below, like the alerts: a crash replays them.
            self.quarantine.put(rejected)
        delivered = self._deliver(alerts, stop)
        if delivered is None:
            return False
        new = sum(delivered)
        self.stats.delivered += new
        self.stats.duplicates += len(delivered) - new
        if self.metrics is not None:
            self.metrics.batch(records, alerts, delivered, len(rejected))
        self._pending_commit = True
        self._commit_due()
        return True

    def _commit_due(self) -> None:
        """Commit the delivered batches if the last commit is `commit_interval_s` old."""
        if not self._pending_commit:
            return
        now = self.clock()
        if self._committed_at is not None and now - self._committed_at < self.commit_interval_s:
            return
        self._committed_at = now
        self._pending_commit = False
        self._commit(sync=False)

    def _commit(self, *, sync: bool) -> None:
        """Commit the consumer's position, which every delivered record is behind."""
        try:
            if sync:
                self.consumer.commit()
                self._committed(None, None)
            else:
                self.consumer.commit_async(callback=self._committed)
        except KafkaError as exc:
            self._committed(None, exc)

    def _committed(self, _offsets: Any, response: Any) -> None:
        """commit_async's callback (run by the consumer's poll, on this thread), and the
        sync commit's outcome: a failed commit is tried again when next due.

        Nothing is lost by a failed commit (a replay is deduplicated by delivery), but
        until one succeeds the group's committed offsets stay behind: its lag never
        drains, and a restart replays the whole gap. A broker restart ended on one, after
        the last batch: with nothing more to poll, it stayed behind for good.
        """
        if isinstance(response, Exception):
            self._pending_commit = True
            self.commit_outage.failed(response)
        else:
            self.commit_outage.ok()

    def _deliver(self, alerts: list[Alert], stop: threading.Event) -> list[bool] | None:
        backoff = 0.1
        # Alerts an attempt delivered on the primary but too few replicas confirmed: a
        # retry finds them claimed, yet this relay delivered them (the counts say so).
        new_before = [False] * len(alerts)
        while True:
            try:
                delivered = self.delivery.deliver(alerts)
                self.redis_outage.ok()
                return [a or b for a, b in zip(new_before, delivered, strict=True)]
            except NotReplicated as exc:
                new_before = [a or b for a, b in zip(new_before, exc.delivered, strict=True)]
                if self.metrics is not None:
                    self.metrics.redis_failed(exc)
                self.redis_outage.failed(exc)
                # The WAIT itself waited its timeout: no backoff on top, so the batch goes
                # through as soon as a replica is back (a restarted node syncing after a
                # failover), not up to MAX_BACKOFF_S later.
                if stop.wait(NOT_REPLICATED_PAUSE_S):
                    return None
                backoff = 0.1
            except redis.RedisError as exc:
                if self.metrics is not None:
                    self.metrics.redis_failed(exc)
                self.redis_outage.failed(exc)
                if stop.wait(backoff):
                    return None
                backoff = min(backoff * 2, MAX_BACKOFF_S)
