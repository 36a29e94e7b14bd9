"""Fixtures only the integration tests use: a producer, a webhook receiver, the API, ACL users.

The stack, the namespace and the settings come from tests/support/fixtures.py, as in
every folder.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from kafka import KafkaProducer

from services.runtime.settings import Settings
from tests.integration.api_client import ADMIN, ALICE, BOB, Api, serving
from tests.integration.receiver import LOCAL_RECEIVER, Receiver
from tests.support.stack import Grant, SettingsFactory


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
