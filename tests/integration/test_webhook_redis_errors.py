"""The webhook worker on real Redis and HTTP when a step fails: Redis errors on every step,
and a bug in a delivery task. Neither may end a task silently or skip a delivery.

Redis errors are real ones: the worker connects as a Redis ACL user of this test that
lacks a command (`-xack`, `-xadd`...), so Redis refuses that step with NOPERM; the test
then grants it and watches the worker finish the step. Users are named after the test's
namespace and dropped with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions import webhook
from services.subscriptions.background import Background
from services.subscriptions.posting import post
from services.subscriptions.registry import SubscriptionRegistry
from services.subscriptions.webhook import GROUP, WebhookWorker
from tests.integration.receiver import Receiver, webhook_settings
from tests.support import factories
from tests.support.fanout_delivery import deliver_and_fan_out
from tests.support.stack import Grant, allow
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration


def _background(s: Settings, worker: WebhookWorker) -> Background:
    """The subscription worker's background with `worker` as its webhook worker, started."""
    background = Background(s, api=False, webhooks=False)
    background.worker = worker
    return background.start()


def test_a_redis_error_on_acknowledging_is_retried_and_the_task_lives_on(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    receiver: Receiver,
    restricted: Grant,
    namespace: str,
) -> None:
    s = webhook_settings(settings)
    sub, _ = SubscriptionRegistry(redis_client, s).create(
        factories.webhook_spec(receiver.url("hook"))
    )
    keys = RedisKeys(s.namespace)
    worker = WebhookWorker(s, redis_url=restricted("-xack"))
    background = _background(s, worker)
    try:
        batch = factories.record_high_alerts(3)
        deliver_and_fan_out(redis_client, s, batch)
        # Posted, but the acknowledgement is refused: the entry stays pending, the task
        # retries the same step instead of dying or skipping.
        wait_until(lambda: len(receiver.bodies("hook")) >= 1, 10)
        wait_until(lambda: worker.stats.redis_errors >= 3, 10)
        assert len(receiver.bodies("hook")) == 1, "moved on without acknowledging"
        task = worker.tasks[sub.id]
        assert not task.done()
        pending: Any = redis_client.xpending(keys.outbox(sub.id), GROUP)
        assert pending["pending"] >= 1

        allow(redis_client, f"{namespace}worker", "xack")
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
    s = webhook_settings(settings)
    sub, _ = SubscriptionRegistry(redis_client, s).create(
        factories.webhook_spec(receiver.url("down"))
    )
    receiver.plans["down"] = [500] * 20
    keys = RedisKeys(s.namespace)
    worker = WebhookWorker(s, redis_url=restricted("-xadd"))
    background = _background(s, worker)
    try:
        (alert,) = factories.record_high_alerts()
        deliver_and_fan_out(redis_client, s, [alert])
        wait_until(lambda: worker.stats.redis_errors >= 2, 15)
        assert int(redis_client.xlen(keys.outbox(sub.id))) == 1
        assert int(redis_client.xlen(keys.webhook_dead(sub.id))) == 0
        assert not worker.tasks[sub.id].done()
        allow(redis_client, f"{namespace}worker", "xadd")
        wait_until(lambda: int(redis_client.xlen(keys.webhook_dead(sub.id))) == 1, 15)
    finally:
        background.stop()
    assert int(redis_client.xlen(keys.outbox(sub.id))) == 0
    ((_, fields),) = redis_client.xrange(keys.webhook_dead(sub.id))  # type: ignore[misc]
    assert fields[b"reason"] == b"HTTP 500"
    assert fields[b"attempts"] == b"2"
    assert fields[b"alert"] == alert.model_dump_json().encode()
    assert len(receiver.bodies("down")) == 2  # two attempts, no more after the Redis error


def test_an_unexpected_error_ends_no_task_silently(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in a delivery task (injected into our own code, not Redis) is logged, and the
    task restarted: the subscription's webhooks go on."""
    s = webhook_settings(settings)
    SubscriptionRegistry(redis_client, s).create(factories.webhook_spec(receiver.url("hook")))
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
            batch = factories.record_high_alerts(2)
            deliver_and_fan_out(redis_client, s, batch)
            wait_until(lambda: len(receiver.bodies("hook")) == 2, 20)
        finally:
            background.stop()
    assert worker.stats.restarts == 1
    assert "delivery task ended (RuntimeError: injected bug); restarting it" in caplog.text
    assert blown == [True]
    got = list(receiver.bodies("hook"))
    assert got == [a.model_dump_json().encode() for a in batch]
