"""Fixtures every test folder may use, registered for all of them by tests/conftest.py.

- factories (`record_high_factory` ...): tests/support/factories.py, quix-streams style;
- the real stack (`stack`, `namespace`, `settings`, `redis_client`, `read_topic`): each
  test gets a namespace of its own (tests/support/stack.py), dropped afterwards.

A stack that is not running fails the tests that ask for it: a skipped integration suite
looks green.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest
import redis

from schemas.alert import Alert
from schemas.signals import AhPremium, IndexDivergence, RecordHigh
from services.runtime.redis_client import connect as connect_redis
from services.runtime.settings import Settings
from tests.support import factories
from tests.support.live import drop_namespace
from tests.support.stack import SettingsFactory, read_all

STACK_HINT = "start the local stack with `make stack-up` (deploy/local/stack.sh up)"


@pytest.fixture
def record_high_factory() -> Callable[..., RecordHigh]:
    return factories.record_high


@pytest.fixture
def divergence_factory() -> Callable[..., IndexDivergence]:
    return factories.divergence


@pytest.fixture
def ah_premium_factory() -> Callable[..., AhPremium]:
    return factories.ah_premium


@pytest.fixture
def alert_factory() -> Callable[..., Alert]:
    return factories.alert


@pytest.fixture
def service_env_factory() -> Callable[..., dict[str, str]]:
    return factories.service_env


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
        connect_redis(base, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis at {base.redis_url}: {exc}")
    if problems:
        pytest.fail("integration stack not reachable: " + "; ".join(problems) + f". {STACK_HINT}")
    return base


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item) -> Any:
    # The call's outcome, for `namespace` to see whether its test failed.
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def namespace(stack: Settings, request: pytest.FixtureRequest) -> Iterator[str]:
    ns = f"t{uuid4().hex[:8]}."
    yield ns
    # MARKETSIGNAL_TEST_KEEP_FAILED=1 (a loop hunting a rare failure): a failed test's
    # topics, offsets and Redis keys stay for forensics, named in the output.
    if os.environ.get("MARKETSIGNAL_TEST_KEEP_FAILED") == "1" and request.node.stash.get(
        CALL_FAILED, False
    ):
        print(f"\nkept namespace {ns} of failed {request.node.nodeid}")
        return
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
    client = connect_redis(stack)
    yield client
    client.close()


@pytest.fixture
def read_topic(stack: Settings) -> Callable[..., list[Any]]:
    """`read_topic(topic, expect=None, timeout_s=30)`: see `tests.support.stack.read_all`."""

    def read(topic: str, *, expect: int | None = None, timeout_s: float = 30.0) -> list[Any]:
        return read_all(stack, topic, expect=expect, timeout_s=timeout_s)

    return read
