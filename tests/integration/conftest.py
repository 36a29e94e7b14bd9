"""Fixtures for tests on the real local stack (Kafka, Redis): `make stack-up` starts it.

Every test gets its own namespace, so its topics, consumer groups and Redis keys never
meet another test's, and tests can share one broker, run in any order, or in parallel.
A stack that is not running fails the tests: a skipped integration suite looks green.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from uuid import uuid4

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.runtime.kafka_admin import ensure_topics
from services.runtime.settings import Settings
from tests.integration.api_client import ADMIN, ALICE, BOB, Api, serving
from tests.integration.receiver import LOCAL_RECEIVER, Receiver
from tests.live import drop_namespace

SettingsFactory = Callable[..., Settings]
Grant = Callable[..., str]
STACK_HINT = "start the local stack with `make stack-up` (deploy/local/stack.sh up)"


def _reachable(host_port: str, timeout_s: float = 2.0) -> str | None:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return None
    except OSError as exc:
        return str(exc)


@pytest.fixture(scope="session")
def stack() -> Settings:
    """The stack's addresses (from MARKETSIGNAL_* if set); fails if Kafka or Redis is down."""
    base = Settings()
    problems = []
    for address in base.kafka_bootstrap.split(","):
        error = _reachable(address.strip())
        if error:
            problems.append(f"Kafka at {address}: {error}")
    try:
        redis.Redis.from_url(base.redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis at {base.redis_url}: {exc}")
    if problems:
        pytest.fail("integration stack not reachable: " + "; ".join(problems) + f". {STACK_HINT}")
    return base


@pytest.fixture
def namespace(stack: Settings) -> Iterator[str]:
    ns = f"t{uuid4().hex[:8]}."
    yield ns
    drop_namespace(stack, ns)


@pytest.fixture
def settings(stack: Settings, namespace: str) -> SettingsFactory:
    """`settings(**overrides)`: Settings in this test's namespace, 3 partitions by default."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"namespace": namespace, "partitions": 3, **overrides}
        return stack.model_copy(update=values)

    return make


@pytest.fixture
def redis_client(stack: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url)
    yield client
    client.close()


@pytest.fixture
def produce(stack: Settings) -> Iterator[Callable[..., None]]:
    """`produce(topic, [(key, value), ...])`: send and wait for every acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")

    def send(topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)

    yield send
    producer.close()


@pytest.fixture
def read_topic(stack: Settings) -> Callable[..., list[Any]]:
    """`read_topic(topic, expect=None, timeout_s=30)`: see `read_all`."""

    def read(topic: str, *, expect: int | None = None, timeout_s: float = 30.0) -> list[Any]:
        return read_all(stack, topic, expect=expect, timeout_s=timeout_s)

    return read


def read_all(
    settings: Settings, topic: str, *, expect: int | None = None, timeout_s: float = 30.0
) -> list[Any]:
    """Every record of `topic` from the start, read with no consumer group.

    Reads until the end offsets taken at the start are reached (and, with `expect`, until
    that many records arrived), so the answer is exact, not "whatever came in N seconds".
    """
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    try:
        deadline = time.monotonic() + timeout_s
        partitions: set[int] | None = None
        while not partitions:
            partitions = consumer.partitions_for_topic(topic)
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic} does not exist")
            if not partitions:
                time.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        records: list[Any] = []
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            at_end = all(consumer.position(tp) >= ends[tp] for tp in tps)
            if at_end and (expect is None or len(records) >= expect):
                break
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.loop.call_soon_threadsafe(made.loop.stop)


@pytest.fixture
def api(settings: SettingsFactory) -> Iterator[Api]:
    """The subscriptions API with two owners (ALICE, BOB) and an admin; calls as ALICE."""
    with serving(settings(api_tokens=(ALICE, BOB), api_admin_tokens=(ADMIN,)), ALICE) as api:
        yield api


@pytest.fixture
def local_api(settings: SettingsFactory) -> Iterator[Api]:
    """Tokenless, with the test receiver's address allow-listed."""
    with serving(settings(webhook_allow_networks=LOCAL_RECEIVER)) as api:
        yield api


@pytest.fixture
def restricted(redis_client: redis.Redis, namespace: str) -> Iterator[Grant]:
    """`restricted(*rules)`: a Redis URL for a user of this namespace with those ACL rules."""
    made: list[str] = []

    def make(*rules: str, user: str = "worker") -> str:
        name = f"{namespace}{user}"
        password = secrets.token_hex(16)
        redis_client.acl_setuser(
            name,
            enabled=True,
            reset=True,
            passwords=[f"+{password}"],
            keys=["*"],
            channels=["*"],
            commands=["+@all", *rules],
        )
        made.append(name)
        base = urlsplit(Settings().redis_url)
        netloc = f"{quote(name)}:{password}@{base.hostname}:{base.port or 6379}"
        return urlunsplit(base._replace(netloc=netloc))

    yield make
    for name in made:
        redis_client.acl_deluser(name)


def allow(redis_client: redis.Redis, name: str, *commands: str) -> None:
    """Grant a `restricted` user `commands` it was denied."""
    redis_client.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", name, *(f"+{c}" for c in commands)
    )


def with_signals_topic(s: Settings) -> Settings:
    """`s`, its signals topic created with all its partitions (the alerter's input)."""
    ensure_topics(s, [s.signals_topic], s.partitions)
    return s
