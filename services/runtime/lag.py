"""Consumer lag per group and partition, computed from the broker (faust has no lag gauge).

lag = the partition's end offset - the group's committed offset (the log start offset when
the group never committed on that partition). It is what a restart would have to replay,
so it grows when a consumer falls behind *or* stops committing.

`LagCollector` computes it when Prometheus scrapes, at most every `min_interval_s`
(cached in between), with its own kafka-python clients: it never touches the service's
consumer. Several workers of one group report the same numbers; the alert rules take
`max by (group, topic, partition)`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("marketsignal.lag")

LAG_METRIC = "marketsignal_consumer_lag"


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    end: int
    committed: int | None  # None: the group never committed on this partition
    start: int = 0

    @property
    def lag(self) -> int:
        base = self.start if self.committed is None else self.committed
        return max(0, self.end - base)


def compute_lag(admin: Any, consumer: Any, group: str, topics: Sequence[str]) -> list[PartitionLag]:
    """Lag of `group` on every partition of `topics` (topics that do not exist are skipped)."""
    committed: dict[TopicPartition, Any] = admin.list_group_offsets(group).get(group, {})
    tps = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    if not tps:
        return []
    ends: dict[TopicPartition, int] = consumer.end_offsets(tps)
    starts: dict[TopicPartition, int] = consumer.beginning_offsets(tps)
    out = []
    for tp in tps:
        meta = committed.get(tp)
        offset = int(meta.offset) if meta is not None and meta.offset >= 0 else None
        out.append(
            PartitionLag(
                group,
                tp.topic,
                tp.partition,
                int(ends[tp]),
                offset,
                int(starts[tp]),
            )
        )
    return out


class LagCollector(Collector):
    """Prometheus collector: `marketsignal_consumer_lag{group,topic,partition}`."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        *,
        min_interval_s: float = 5.0,
        timeout_ms: int = 5000,
    ) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = list(topics)
        self.min_interval_s = min_interval_s
        self.timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._cached: list[PartitionLag] = []
        self._at = float("-inf")
        self._admin: Any = None
        self._consumer: Any = None

    def _clients(self) -> tuple[Any, Any]:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=self.timeout_ms
            )
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                request_timeout_ms=max(self.timeout_ms, 5000) + 1,
                enable_auto_commit=False,
            )
        return self._admin, self._consumer

    def refresh(self) -> list[PartitionLag]:
        with self._lock:
            now = time.monotonic()
            if now - self._at < self.min_interval_s:
                return self._cached
            try:
                admin, consumer = self._clients()
                self._cached = compute_lag(admin, consumer, self.group, self.topics)
            except (KafkaError, OSError, ValueError) as exc:
                # Keep the last known figures; the broker itself is alerted on elsewhere.
                log.warning("consumer lag of %s not computed: %s", self.group, exc)
                self.close_clients()
            self._at = now
            return self._cached

    def close_clients(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                try:
                    client.close()
                except Exception:
                    log.debug("closing a lag client failed", exc_info=True)
        self._admin = self._consumer = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing without collecting: registering must not contact the broker.
        yield GaugeMetricFamily(LAG_METRIC, "", labels=["group", "topic", "partition"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            LAG_METRIC,
            "Messages of a partition not yet committed by a consumer group",
            labels=["group", "topic", "partition"],
        )
        for item in self.refresh():
            family.add_metric([item.group, item.topic, str(item.partition)], item.lag)
        yield family


def caught_up(bootstrap: str, group: str, topics: Sequence[str]) -> bool:
    """True once `group` has committed every message of `topics` (and they exist).

    `make run` and the end-to-end tests wait on it after `history load`, so the processor
    has merged the bars before the first tick arrives: a deterministic replay.
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        lags = compute_lag(admin, consumer, group, topics)
    except KafkaError as exc:
        if not exc.retriable:
            raise
        # A broker just started has no group coordinator yet (its offsets topic is still
        # being created): not caught up, ask again.
        log.debug("lag of %s not known yet: %r", group, exc)
        return False
    finally:
        admin.close()
        consumer.close()
    return bool(lags) and all(item.lag == 0 for item in lags)
