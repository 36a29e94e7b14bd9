"""Fan-out off the Kafka loop, on real Redis: the queue, the lease, takeover, Redis errors,
and registry changes applied one at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import redis

from schemas.subscription import Subscription, SubscriptionSpec
from services.alerter.delivery import RedisDelivery
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.fanout_worker import GROUP, FanoutWorker
from services.subscriptions.follower import LiveIndex
from services.subscriptions.handoff import FanoutQueue
from services.subscriptions.registry import SubscriptionRegistry
from tests.support import factories
from tests.support.live import alert_ids
from tests.support.stack import Grant, allow
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration


def _stream_ids(client: redis.Redis, keys: RedisKeys, sub_id: str) -> list[str]:
    return alert_ids(client, keys.stream(sub_id))


def _batch(n: int, start: int = 0) -> list[Any]:
    return factories.alerts(
        [
            factories.record_high(
                "2513.HK", datetime(2026, 2, 13, 10, 0, start + i, tzinfo=factories.HKT)
            )
            for i in range(n)
        ]
    )


def _queued(redis_client: redis.Redis, s: Settings, n: int) -> tuple[Subscription, list[Any]]:
    """A catch-all subscription, and `n` alerts delivered and queued for its fan-out."""
    sub, _ = SubscriptionRegistry(redis_client, s).create(SubscriptionSpec(name="all"))
    batch = _batch(n)
    RedisDelivery(redis_client, s, queue=FanoutQueue.of(s)).deliver(batch)
    return sub, batch


def test_a_worker_takes_over_a_dead_holders_queue_in_order(
    settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = settings()
    keys = RedisKeys(s.namespace)
    sub, batch = _queued(redis_client, s, 6)
    # A worker that held the lease, read four alerts and died (real Redis calls).
    redis_client.xgroup_create(keys.fanout_queue, GROUP, id="0")
    redis_client.xreadgroup(GROUP, "dead", {keys.fanout_queue: ">"}, count=4)
    redis_client.set(keys.fanout_lease, "dead", px=1500)
    worker = FanoutWorker(s, lease_ms=1000).start()
    try:
        wait_until(lambda: len(_stream_ids(redis_client, keys, sub.id)) == 6, 20)
        wait_until(lambda: int(redis_client.xlen(keys.fanout_queue)) == 0, 10)
    finally:
        worker.stop()
    assert _stream_ids(redis_client, keys, sub.id) == [a.alert_id for a in batch]
    assert worker.stats.delivered == 6


def test_two_workers_deliver_each_alert_once_in_order(
    settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = settings()
    keys = RedisKeys(s.namespace)
    registry = SubscriptionRegistry(redis_client, s)
    subs = [registry.create(SubscriptionSpec(name=f"s{i}"))[0] for i in range(3)]
    workers = [FanoutWorker(s, consumer=f"w{i}").start() for i in range(2)]
    shared = RedisDelivery(redis_client, s, queue=FanoutQueue.of(s))
    sent: list[str] = []
    try:
        for round_ in range(10):
            batch = _batch(5, start=round_ * 5)
            shared.deliver(batch)
            sent += [a.alert_id for a in batch]
        for sub in subs:
            wait_until(lambda sub=sub: len(_stream_ids(redis_client, keys, sub.id)) >= 50, 20)  # type: ignore[misc]
    finally:
        for worker in workers:
            worker.stop()
    for sub in subs:
        assert _stream_ids(redis_client, keys, sub.id) == sent
    assert sum(w.stats.delivered for w in workers) == 150


def test_a_redis_error_in_the_fan_out_is_retried_not_fatal(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    restricted: Grant,
    namespace: str,
) -> None:
    s = settings()
    keys = RedisKeys(s.namespace)
    sub, batch = _queued(redis_client, s, 3)
    url = restricted("-evalsha", "-eval", user="fanout")
    worker = FanoutWorker(s.model_copy(update={"redis_url": url})).start()
    try:
        wait_until(lambda: worker.errors >= 2, 20)
        assert _stream_ids(redis_client, keys, sub.id) == []
        allow(redis_client, f"{namespace}fanout", "evalsha", "eval")
        wait_until(lambda: len(_stream_ids(redis_client, keys, sub.id)) == 3, 20)
    finally:
        worker.stop()
    assert _stream_ids(redis_client, keys, sub.id) == [a.alert_id for a in batch]
    assert worker._thread.is_alive() is False


def test_registry_changes_are_applied_one_at_a_time(
    settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = settings()
    registry = SubscriptionRegistry(redis_client, s)
    live = LiveIndex(registry)
    first = [registry.create(SubscriptionSpec(name=f"s{i}"))[0] for i in range(5)]
    assert len(live.current()) == 5
    assert live.follower.reloads == 1
    added, _ = registry.create(SubscriptionSpec(name="new"))
    registry.update(first[0].id, SubscriptionSpec(name="changed", filters={"symbols": ["X"]}))
    registry.delete(first[1].id)
    index = live.current()
    assert live.follower.reloads == 1
    assert live.follower.changes_applied == 3
    assert set(index.subscriptions) == {s.id for s in first if s.id != first[1].id} | {added.id}
    assert index.subscriptions[first[0].id].filters.symbols == ("X",)
    # Changes made concurrently with reads are all seen, none twice.
    stop = threading.Event()

    def create_many() -> None:
        for i in range(30):
            registry.create(SubscriptionSpec(name=f"c{i}"))
        stop.set()

    writer = threading.Thread(target=create_many)
    writer.start()
    while not stop.is_set():
        live.current()
    writer.join()
    assert len(live.current()) == len(registry.list_all()) == 35
    # A reader further behind than the change stream keeps reloads everything.
    behind = LiveIndex(registry)
    behind.current()
    redis_client.xtrim(registry.keys.changes, maxlen=0, approximate=False)
    registry.delete(added.id)
    registry.delete(first[2].id)
    redis_client.xtrim(registry.keys.changes, maxlen=1, approximate=False)
    assert len(behind.current()) == 33
    assert behind.follower.reloads == 2


def test_a_registry_of_an_earlier_version_is_adopted(
    settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    """Subscriptions written before owners existed (JSON without `owner`, a plain-text
    secret in `subs:secret`): the alerter's start makes them the CLI's, pageable by an
    admin, and deletes the stored secrets."""
    s = settings()
    registry = SubscriptionRegistry(redis_client, s)
    current, _ = registry.create(SubscriptionSpec(name="current"), owner="local")
    legacy = (
        '{"name":"old","id":"00000000000000aa","created_at":"2026-01-01T00:00:00Z",'
        '"updated_at":"2026-01-01T00:00:00Z"}'
    )
    redis_client.hset(registry.keys.subs, "00000000000000aa", legacy)
    redis_client.hset(s.redis_key("subs:secret"), "00000000000000aa", "plain-text-secret")
    assert registry.adopt_legacy() == 1
    assert registry.adopt_legacy() == 0
    assert not redis_client.exists(s.redis_key("subs:secret"))
    page, _next = registry.page(None)
    assert [x.id for x in page] == sorted(["00000000000000aa", current.id])
    assert [x.id for x in registry.page("cli")[0]] == ["00000000000000aa"]
    assert registry.get("00000000000000aa", "cli") is not None
    assert registry.delete("00000000000000aa", "local") is False
    assert registry.delete("00000000000000aa", "cli") is True
