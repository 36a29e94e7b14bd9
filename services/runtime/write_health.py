"""Whether the Kafka cluster can take a service's writes, for /readyz, a metric and the log.

A producer with acks=all retries a write the cluster cannot take (no leader, fewer in-sync
replicas than min.insync.replicas) until its delivery timeout, silently: the service looks
healthy while nothing it sends is acknowledged. A thread here describes the service's
topics every few seconds and says what stands in the way, per topic:

- a partition without a leader (an election under way, or no quorum to hold one);
- a partition whose leader does not accept connections (killed, and not yet fenced);
- a partition with fewer reachable in-sync replicas than min.insync.replicas: acks=all
  writes are refused (NOT_ENOUGH_REPLICAS) or wait for a replica that is gone. Reachable,
  not just listed: with the controller quorum lost too (two of three combined nodes down),
  the metadata is frozen and still lists the dead nodes as in sync.

One WARNING when writes become impossible, one line when they are possible again
(services/runtime/outage.py), and a gauge of the partitions that cannot take writes.
A service may add probes of its own (the ingestor's: no acknowledgement for a while).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge

from services.runtime.outage import Outage
from services.runtime.settings import Settings

log = logging.getLogger("marketsignal.kafka")

# How often the topics are described: a few metadata requests per interval, one TCP connect
# per leader or in-sync replica checked.
INTERVAL_S = 2.0
CONNECT_TIMEOUT_S = 0.5

# A probe of the service's own: a problem to report, or None.
Probe = Callable[[], str | None]


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def unwritable(
    topics: list[dict[str, Any]],
    brokers: dict[int, tuple[str, int]],
    min_isr: int,
    answers: Callable[[str, int], bool] = _answers,
) -> dict[str, list[str]]:
    """Per topic, why each partition that cannot take acks=all writes cannot.

    `topics`: kafka-python's describe_topics; `brokers`: node id -> (host, port).
    """
    up: dict[int, bool] = {}

    def alive(node: int) -> bool:
        if node not in up:
            address = brokers.get(node)
            up[node] = address is not None and answers(*address)
        return up[node]

    out: dict[str, list[str]] = {}
    for topic in topics:
        reasons = []
        for p in sorted(topic.get("partitions", []), key=lambda p: p["partition_index"]):
            index, leader = p["partition_index"], p["leader_id"]
            isr = [n for n in p["isr_nodes"] if alive(n)]
            if leader < 0:
                reasons.append(f"[{index}] no leader")
            elif not alive(leader):
                reasons.append(f"[{index}] leader node {leader} does not answer")
            elif len(isr) < min_isr:
                reasons.append(
                    f"[{index}] {len(isr)} in-sync replica(s) answer, min.insync.replicas="
                    f"{min_isr}: NOT_ENOUGH_REPLICAS"
                )
        if reasons:
            out[topic["name"]] = reasons
    return out


class WriteHealth:
    """The cluster's ability to take writes to `topics`, checked on a thread of its own."""

    def __init__(
        self,
        settings: Settings,
        topics: list[str],
        registry: CollectorRegistry | None = None,
        probes: tuple[Probe, ...] = (),
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.probes = probes
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._admin: KafkaAdminClient | None = None
        self.outage = Outage(log, "Kafka writes")
        self.gauge = (
            Gauge(
                "marketsignal_kafka_unwritable_partitions",
                "Partitions of the service's topics that cannot take acks=all writes now "
                "(no leader, leader unreachable, or fewer in-sync replicas than "
                "min.insync.replicas)",
                ["topic"],
                registry=registry,
            )
            if registry is not None
            else None
        )

    def __call__(self) -> tuple[bool, str]:
        with self._lock:
            problem = self._problem
        return (True, "Kafka takes writes") if problem is None else (False, problem)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kafka-write-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._admin is not None:
            self._admin.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def check(self) -> str | None:
        """Check once; the problem found (also what /readyz says), or None."""
        try:
            problem = self._cluster_problem()
        except (KafkaError, OSError) as exc:
            problem = f"Kafka at {self.settings.kafka_bootstrap} does not answer: {exc}"
        if problem is None:
            for probe in self.probes:
                problem = probe()
                if problem is not None:
                    break
        with self._lock:
            self._problem = problem
        if problem is None:
            self.outage.ok()
        else:
            self.outage.failed(problem)
        return problem

    def _cluster_problem(self) -> str | None:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.settings.kafka_bootstrap,
                client_id=f"{self.settings.namespace}marketsignal-write-health",
                request_timeout_ms=int(self.interval_s * 2000),
                reconnect_backoff_max_ms=1000,
            )
        cluster = self._admin.describe_cluster()
        brokers = {b["broker_id"]: (b["host"], b["port"]) for b in cluster["brokers"]}
        found = unwritable(
            self._admin.describe_topics(self.topics), brokers, self.settings.min_insync_replicas
        )
        if self.gauge is not None:
            for topic in self.topics:
                self.gauge.labels(topic).set(len(found.get(topic, [])))
        if not found:
            return None
        return "Kafka cannot take writes: " + "; ".join(
            f"{topic}{', '.join(reasons)}" for topic, reasons in found.items()
        )
