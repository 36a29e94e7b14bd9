"""The webhook worker on real Redis and HTTP: Redis errors on every step, dead letters,
expiry, and a new worker taking over a dead one's pending deliveries.

Redis errors are real ones: the worker connects as a Redis ACL user of this test that
lacks a command (`-xack`, `-xadd`...), so Redis refuses that step with NOPERM; the test
then grants it and watches the worker finish the step. Users are named after the test's
namespace and dropped with it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis

from services.runtime.settings import Settings
from services.subscriptions import webhook
from services.subscriptions.background import Background
from services.subscriptions.keys import SubscriptionKeys
from services.subscriptions.posting import post
from services.subscriptions.registry import SubscriptionRegistry
from services.subscriptions.webhook import GROUP, WebhookWorker
from tests import factories
from tests.integration.receiver import LOCAL_RECEIVER, Receiver
from tests.live import subscription_delivery, wait_until

pytestmark = pytest.mark.integration

Grant = Callable[..., str]


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


def _allow(redis_client: redis.Redis, name: str, command: str) -> None:
    redis_client.execute_command("ACL", "SETUSER", name, f"+{command}")


def _settings(settings: Callable[..., Settings], **more: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_backoff_s": 0.05,
        "webhook_max_attempts": 2,
        "webhook_allow_networks": LOCAL_RECEIVER,
        **more,
    }
    return settings(**values)


def test_a_redis_error_on_acknowledging_is_retried_and_the_task_lives_on(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    receiver: Receiver,
    restricted: Grant,
    namespace: str,
) -> None:
    s = _settings(settings)
    sub, _ = SubscriptionRegistry(redis_client, s).create(
        factories.subscription_spec(delivery={"webhook": {"url": receiver.url("hook")}})
    )
    keys = SubscriptionKeys(s)
    worker = WebhookWorker(s, redis_url=restricted("-xack"))
    background = Background(s, api=False, webhooks=False)
    background.worker = worker
    background.start()
    try:
        batch = factories.alerts(
            [
                factories.record_high("2513.HK", datetime(2026, 2, 13, 10, i, tzinfo=factories.HKT))
                for i in range(3)
            ]
        )
        subscription_delivery(redis_client, s).deliver(batch)
        # Posted, but the acknowledgement is refused: the entry stays pending, the task
        # retries the same step instead of dying or skipping.
        wait_until(lambda: len(receiver.bodies("hook")) >= 1, 10)
        wait_until(lambda: worker.stats.redis_errors >= 3, 10)
        assert len(receiver.bodies("hook")) == 1, "moved on without acknowledging"
        task = worker.tasks[sub.id]
        assert not task.done()
        pending: Any = redis_client.xpending(keys.outbox(sub.id), GROUP)
        assert pending["pending"] >= 1

        _allow(redis_client, f"{namespace}worker", "xack")
        wait_until(lambda: int(redis_client.xlen(keys.outbox(sub.id))) == 0, 15)
        assert worker.tasks[sub.id] is task  # the same task, never restarted
    finally:
        background.stop()
    ids = list(receiver.bodies("hook"))
    assert len(ids) == 3  # each alert posted once: the retried step was the XACK alone
    assert worker.stats.restarts == 0


def test_a_redis_error_on_dead_lettering_is_retried_and_nothing_is_acknowledged_before(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    receiver: Receiver,
    restricted: Grant,
    namespace: str,
) -> None:
    """Every attempt fails; recording the dead letter fails too: the entry stays pending."""
    s = _settings(settings)
    sub, _ = SubscriptionRegistry(redis_client, s).create(
        factories.subscription_spec(delivery={"webhook": {"url": receiver.url("down")}})
    )
    receiver.plans["down"] = [500] * 20
    keys = SubscriptionKeys(s)
    worker = WebhookWorker(s, redis_url=restricted("-xadd"))
    background = Background(s, api=False, webhooks=False)
    background.worker = worker
    background.start()
    try:
        (alert,) = factories.alerts(
            [factories.record_high("2513.HK", datetime(2026, 2, 13, 10, 0, tzinfo=factories.HKT))]
        )
        subscription_delivery(redis_client, s).deliver([alert])
        wait_until(lambda: worker.stats.redis_errors >= 2, 15)
        assert int(redis_client.xlen(keys.outbox(sub.id))) == 1
        assert int(redis_client.xlen(keys.webhook_dead(sub.id))) == 0
        assert not worker.tasks[sub.id].done()
        _allow(redis_client, f"{namespace}worker", "xadd")
        wait_until(lambda: int(redis_client.xlen(keys.webhook_dead(sub.id))) == 1, 15)
    finally:
        background.stop()
    assert int(redis_client.xlen(keys.outbox(sub.id))) == 0
    ((_, fields),) = redis_client.xrange(keys.webhook_dead(sub.id))  # type: ignore[misc]
    assert fields[b"reason"] == b"HTTP 500"
    assert fields[b"attempts"] == b"2"
    assert fields[b"alert"] == alert.model_dump_json().encode()
    assert len(receiver.bodies("down")) == 2  # two attempts, no more after the Redis error


def test_every_attempt_failing_dead_letters_with_the_reason(
    settings: Callable[..., Settings], redis_client: redis.Redis, receiver: Receiver
) -> None:
    s = _settings(settings, webhook_max_attempts=3, webhook_timeout_s=0.5)
    registry = SubscriptionRegistry(redis_client, s)
    failing, _ = registry.create(
        factories.subscription_spec(delivery={"webhook": {"url": receiver.url("fails")}})
    )
    slow, _ = registry.create(
        factories.subscription_spec(delivery={"webhook": {"url": receiver.url("slow")}})
    )
    receiver.plans["fails"] = [503] * 3
    receiver.plans["slow"] = ["hang"] * 3
    keys = SubscriptionKeys(s)
    background = Background(s, api=False).start()
    try:
        (alert,) = factories.alerts(
            [factories.record_high("0700.HK", datetime(2026, 2, 13, 10, 0, tzinfo=factories.HKT))]
        )
        subscription_delivery(redis_client, s).deliver([alert])
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


def test_an_unexpected_error_ends_no_task_silently(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in a delivery task (injected into our own code, not Redis) is logged, and the
    task restarted: the subscription's webhooks go on."""
    s = _settings(settings)
    SubscriptionRegistry(redis_client, s).create(
        factories.subscription_spec(delivery={"webhook": {"url": receiver.url("hook")}})
    )
    worker = WebhookWorker(s)
    blown: list[bool] = []

    async def buggy(*args: Any) -> str | None:
        if not blown:
            blown.append(True)
            raise RuntimeError("injected bug")
        return await post(*args)

    monkeypatch.setattr(webhook, "post", buggy)
    background = Background(s, api=False, webhooks=False)
    background.worker = worker
    with caplog.at_level("ERROR"):
        background.start()
        try:
            batch = factories.alerts(
                [
                    factories.record_high(
                        "2513.HK", datetime(2026, 2, 13, 10, i, tzinfo=factories.HKT)
                    )
                    for i in range(2)
                ]
            )
            subscription_delivery(redis_client, s).deliver(batch)
            wait_until(lambda: len(receiver.bodies("hook")) == 2, 20)
        finally:
            background.stop()
    assert worker.stats.restarts == 1
    assert "delivery task ended (RuntimeError: injected bug); restarting it" in caplog.text
    assert blown == [True]
    got = list(receiver.bodies("hook"))
    assert got == [a.model_dump_json().encode() for a in batch]


def test_an_expired_subscription_gets_nothing_more(
    settings: Callable[..., Settings], redis_client: redis.Redis, receiver: Receiver
) -> None:
    """`expires_at` is wall clock: decided when the alert is fanned out."""
    s = _settings(settings)
    expires = datetime(2027, 1, 1, tzinfo=UTC)
    sub, _ = SubscriptionRegistry(redis_client, s).create(
        factories.subscription_spec(
            expires_at=expires, delivery={"stream": True, "webhook": {"url": receiver.url("x")}}
        )
    )
    keys = SubscriptionKeys(s)
    before, after = (
        factories.alerts(
            [factories.record_high("2513.HK", datetime(2026, 2, 13, 10, i, tzinfo=factories.HKT))]
        )
        for i in range(2)
    )
    from services.alerter.delivery import RedisDelivery
    from services.subscriptions.fanout import SubscriptionDelivery

    def at(moment: datetime) -> SubscriptionDelivery:
        return SubscriptionDelivery(
            RedisDelivery(redis_client, s), redis_client, s, now=lambda: moment
        )

    at(expires - timedelta(seconds=1)).deliver(before)
    at(expires).deliver(after)
    assert int(redis_client.xlen(keys.stream(sub.id))) == 1
    assert int(redis_client.xlen(keys.outbox(sub.id))) == 1
    background = Background(s, api=False).start()
    try:
        wait_until(lambda: len(receiver.bodies("x")) == 1, 10)
        time.sleep(0.5)
    finally:
        background.stop()
    assert receiver.bodies("x") == [before[0].model_dump_json().encode()]


def test_a_new_worker_takes_over_a_dead_workers_pending_deliveries(
    settings: Callable[..., Settings], redis_client: redis.Redis, receiver: Receiver
) -> None:
    s = _settings(settings, webhook_claim_idle_ms=500)
    sub, secret = SubscriptionRegistry(redis_client, s).create(
        factories.subscription_spec(delivery={"webhook": {"url": receiver.url("hook")}})
    )
    keys = SubscriptionKeys(s)
    batch = factories.alerts(
        [
            factories.record_high("2513.HK", datetime(2026, 2, 13, 10, i, tzinfo=factories.HKT))
            for i in range(3)
        ]
    )
    subscription_delivery(redis_client, s).deliver(batch)
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
