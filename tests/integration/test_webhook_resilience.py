"""The webhook worker on real Redis and HTTP: dead letters, expiry, and a new worker
taking over a dead one's pending deliveries. Failing Redis steps and task bugs are in
test_webhook_redis_errors.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.background import Background
from services.subscriptions.registry import SubscriptionRegistry
from services.subscriptions.webhook import GROUP
from tests.integration.receiver import Receiver, webhook_settings
from tests.support import factories
from tests.support.fanout_delivery import deliver_and_fan_out
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration


def test_every_attempt_failing_dead_letters_with_the_reason(
    settings: Callable[..., Settings], redis_client: redis.Redis, receiver: Receiver
) -> None:
    s = webhook_settings(settings, webhook_max_attempts=3, webhook_timeout_s=0.5)
    registry = SubscriptionRegistry(redis_client, s)
    failing, _ = registry.create(factories.webhook_spec(receiver.url("fails")))
    slow, _ = registry.create(factories.webhook_spec(receiver.url("slow")))
    receiver.plans["fails"] = [503] * 3
    receiver.plans["slow"] = ["hang"] * 3
    keys = RedisKeys(s.namespace)
    background = Background(s, api=False).start()
    try:
        (alert,) = factories.record_high_alerts(symbol="0700.HK")
        deliver_and_fan_out(redis_client, s, [alert])
        for sub in (failing, slow):
            wait_until(lambda sub=sub: int(redis_client.xlen(keys.webhook_dead(sub.id))) == 1, 20)  # type: ignore[misc]
    finally:
        background.stop()
    reasons = {}
    for sub in (failing, slow):
        ((_, fields),) = redis_client.xrange(keys.webhook_dead(sub.id))  # type: ignore[misc]
        assert fields[b"alert"] == alert.model_dump_json().encode()
        assert fields[b"attempts"] == b"3"
        reasons[sub.id] = fields[b"reason"].decode()
        assert int(redis_client.xlen(keys.outbox(sub.id))) == 0
        assert int(redis_client.get(keys.webhook_failures(sub.id)) or 0) == 3
    assert reasons[failing.id] == "HTTP 503"
    assert reasons[slow.id].startswith(("TimeoutError", "ServerTimeoutError")), reasons
    assert len(receiver.bodies("fails")) == 3


def test_an_expired_subscription_gets_nothing_more(
    settings: Callable[..., Settings], redis_client: redis.Redis, receiver: Receiver
) -> None:
    """`expires_at` is wall clock: decided when the alert is fanned out."""
    s = webhook_settings(settings)
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    sub, _ = SubscriptionRegistry(redis_client, s).create(
        factories.subscription_spec(
            expires_at=expires, delivery={"stream": True, "webhook": {"url": receiver.url("x")}}
        )
    )
    keys = RedisKeys(s.namespace)
    before, after = ([alert] for alert in factories.record_high_alerts(2))

    deliver_and_fan_out(redis_client, s, before, now=lambda: expires - timedelta(seconds=1))
    deliver_and_fan_out(redis_client, s, after, now=lambda: expires)
    assert int(redis_client.xlen(keys.stream(sub.id))) == 1
    assert int(redis_client.xlen(keys.outbox(sub.id))) == 1
    background = Background(s, api=False).start()
    try:
        wait_until(lambda: len(receiver.bodies("x")) == 1, 10)
        # Settled: the outbox held that one delivery only, and is empty once it is
        # acknowledged, so nothing else can still be on its way.
        wait_until(lambda: int(redis_client.xlen(keys.outbox(sub.id))) == 0, 10)
    finally:
        background.stop()
    assert receiver.bodies("x") == [before[0].model_dump_json().encode()]


def test_a_new_worker_takes_over_a_dead_workers_pending_deliveries(
    settings: Callable[..., Settings], redis_client: redis.Redis, receiver: Receiver
) -> None:
    s = webhook_settings(settings, webhook_claim_idle_ms=500)
    sub, secret = SubscriptionRegistry(redis_client, s).create(
        factories.webhook_spec(receiver.url("hook"))
    )
    keys = RedisKeys(s.namespace)
    batch = factories.record_high_alerts(3)
    deliver_and_fan_out(redis_client, s, batch)
    # A worker that read two deliveries and died before posting them (real Redis calls,
    # exactly what a worker does before its POST).
    redis_client.xgroup_create(keys.outbox(sub.id), GROUP, id="0")
    taken: Any = redis_client.xreadgroup(GROUP, "dead-worker", {keys.outbox(sub.id): ">"}, count=2)
    assert len(taken[0][1]) == 2
    background = Background(s, api=False).start()
    try:
        wait_until(lambda: len(receiver.bodies("hook")) == 3, 20)
        wait_until(lambda: int(redis_client.xlen(keys.outbox(sub.id))) == 0, 10)
    finally:
        background.stop()
    posted = receiver.bodies("hook")
    assert sorted(posted) == sorted(a.model_dump_json().encode() for a in batch)
    pending: Any = redis_client.xpending(keys.outbox(sub.id), GROUP)
    assert pending["pending"] == 0
    assert secret  # the subscription's secret signed the taken-over deliveries too
