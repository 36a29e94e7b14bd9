"""Kafka clients and topics shared by the services: topic creation (idempotent, so every
service can call it at start) and the one durable producer they write with."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from services.runtime.settings import Settings

log = logging.getLogger("marketsignal.kafka")

MIN_ISR = "min.insync.replicas"


class BrokerUnavailableError(RuntimeError):
    """The broker could not be reached or refused the request; the message says which."""


@contextmanager
def connecting(settings: Settings) -> Iterator[None]:
    """Around a Kafka client's creation: a broker that does not answer becomes a
    `BrokerUnavailableError` that says where it was looked for and how to start one.
    """
    try:
        yield
    except KafkaError as exc:
        raise BrokerUnavailableError(
            f"Kafka at {settings.kafka_bootstrap} is not reachable ({exc}); "
            "start the local stack with `make stack-up`"
        ) from None


# kafka-python backs off reconnecting exponentially up to 30 s by default: after a broker
# restart of ~10 s a client could sleep another 10-20 s before its next try (the fault
# suite saw the first alert 15-29 s after the broker was back). Java's clients cap it at 1 s.
RECONNECT_BACKOFF_MAX_MS = 1000


def durable_producer(settings: Settings, role: str, **tuning: Any) -> KafkaProducer:
    """The services' producer: acks=all and idempotent (a retried send is never written
    twice), named `{namespace}marketsignal-{role}` so the broker's logs and quotas tell the
    services apart. `tuning` adds batching and compression settings."""
    with connecting(settings):
        return KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            bootstrap_timeout_ms=settings.kafka_bootstrap_timeout_ms,
            client_id=f"{settings.namespace}marketsignal-{role}",
            acks="all",
            enable_idempotence=True,
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            **tuning,
        )


def ensure_topics(
    settings: Settings,
    names: list[str],
    partitions: int,
    configs: dict[str, dict[str, str]] | None = None,
) -> None:
    """Create each topic that does not exist yet and wait until all have leaders.

    `configs`: topic configs by topic name (e.g. compaction for a changelog).
    """
    with connecting(settings):
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            bootstrap_timeout_ms=settings.kafka_bootstrap_timeout_ms,
            client_id=f"{settings.namespace}marketsignal-admin",
        )
    try:
        # Every topic with the configured min.insync.replicas, not the broker's default: on
        # a cluster whose default is 1, an acks=all write would be acknowledged by the
        # leader alone and lost with it.
        spec: dict[str, dict[str, Any]] = {
            name: {
                "num_partitions": partitions,
                "replication_factor": settings.replication_factor,
                "configs": {
                    MIN_ISR: str(settings.min_insync_replicas),
                    **(configs.get(name, {}) if configs else {}),
                },
            }
            for name in names
        }
        # raise_errors=False: one existing topic must not stop the others being created.
        result = admin.create_topics(spec, raise_errors=False)
        for topic in result.get("topics", []):
            code = topic.get("error_code", 0)
            if code == 0:
                continue
            error = for_code(code)
            if error is TopicAlreadyExistsError:
                continue
            raise BrokerUnavailableError(
                f"cannot create topic {topic.get('name')}: {error.__name__} "
                f"{topic.get('error_message') or ''}".rstrip()
            )
        # A created topic can take a moment to get partition leaders (KRaft): a producer or
        # consumer started before that would see "unknown topic" errors.
        admin.wait_for_topics(names, timeout_ms=settings.kafka_bootstrap_timeout_ms)
        for problem in topic_mismatches(admin, settings, names):
            log.warning("%s", problem)
    except KafkaError as exc:
        raise BrokerUnavailableError(f"Kafka at {settings.kafka_bootstrap}: {exc}") from None
    finally:
        admin.close()


def ensure_levels_topic(settings: Settings) -> None:
    """The subscribers' levels topic: compacted, so the latest record of every level id
    (a level, or a tombstone until the broker drops it) is kept however old."""
    topic = settings.levels_topic
    ensure_topics(settings, [topic], settings.partitions, {topic: {"cleanup.policy": "compact"}})


def topic_mismatches(admin: KafkaAdminClient, settings: Settings, names: list[str]) -> list[str]:
    """What the topics' replication and min.insync.replicas say against the settings, read
    back from the broker: a topic created earlier (by another version, by hand, or by a
    broker's auto-creation) keeps what it was created with, and create_topics does not
    say so. One line per topic that disagrees; none when all agree."""
    problems = []
    for topic in admin.describe_topics(names):
        name = topic["name"]
        factors = sorted({len(p["replica_nodes"]) for p in topic.get("partitions", [])})
        if factors and factors != [settings.replication_factor]:
            problems.append(
                f"topic {name} has replication factor {'/'.join(map(str, factors))}, "
                f"the settings say {settings.replication_factor} "
                "(MARKETSIGNAL_REPLICATION_FACTOR): an existing topic keeps its own; "
                "reassign its partitions or recreate it"
            )
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, [MIN_ISR]) for name in names]
    described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    for name in names:
        entry = described.get(name, {}).get(MIN_ISR)
        value = None if entry is None else entry.get("value")
        if value is not None and int(value) != settings.min_insync_replicas:
            problems.append(
                f"topic {name} has min.insync.replicas={value}, the settings say "
                f"{settings.min_insync_replicas} (MARKETSIGNAL_MIN_INSYNC_REPLICAS): an "
                "existing topic keeps its own; kafka-configs --alter sets it"
            )
    return problems
