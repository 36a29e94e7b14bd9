"""Subscriptions on real Redis, Kafka and HTTP: frequency, runtime changes, webhooks.
Filters are in test_subscription_filters.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import redis

from schemas.alert import Alert
from schemas.signals import AnySignal
from services.alerter.service import relay_signals
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.background import Background
from services.subscriptions.registry import SubscriptionRegistry
from services.subscriptions.signing import SIGNATURE_HEADER, verify
from tests.integration.receiver import Receiver, webhook_settings
from tests.support import factories
from tests.support.fanout_delivery import FanoutDelivery, deliver_and_fan_out
from tests.support.live import subscription_alert_ids
from tests.support.stack import with_signals_topic
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

Signal = AnySignal


def test_once_per_day_in_the_exchange_zone_and_cooldown_on_event_time(
    settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = settings()
    registry = SubscriptionRegistry(redis_client, s)
    daily, _ = registry.create(factories.subscription_spec(frequency="once_per_day"))
    cool, _ = registry.create(factories.subscription_spec(frequency="cooldown", cooldown_s=600))
    every, _ = registry.create(factories.subscription_spec())
    day1 = datetime(2026, 2, 12, 9, 30, tzinfo=factories.HKT)
    items: list[Signal] = [
        factories.record_high(
            "2513.HK", day1, 110
        ),  # daily: first of 2026-02-12 factories.HKT; cool: first
        factories.record_high("2513.HK", day1 + timedelta(minutes=5), 111),  # cool: 300 s after: no
        factories.record_high(
            "0700.HK", day1 + timedelta(minutes=6), 112
        ),  # another subject: both yes
        factories.record_high(
            "2513.HK", day1 + timedelta(minutes=10), 113
        ),  # cool: exactly 600 s: yes
        factories.record_high(
            "2513.HK", day1 + timedelta(minutes=19), 114
        ),  # cool: 540 s after: no
        # 23:59 factories.HKT is 15:59 UTC: still 2026-02-12 in Hong Kong, so no daily alert.
        factories.record_high("2513.HK", datetime(2026, 2, 12, 23, 59, tzinfo=factories.HKT), 115),
        # 00:01 factories.HKT on the 13th is 16:01 UTC on the 12th: a new day in Hong Kong.
        factories.record_high("2513.HK", datetime(2026, 2, 13, 0, 1, tzinfo=factories.HKT), 116),
        factories.record_high(
            "2513.HK", datetime(2026, 2, 13, 0, 5, tzinfo=factories.HKT), 117
        ),  # cool: 360 s: no
    ]
    batch = factories.alerts(items)
    ids = [a.alert_id for a in batch]

    # Two batches, as the relay would deliver them; then the whole lot again (a replay:
    # the shared delivery's claim keeps it out of the fan-out queue); then its fan-out
    # again (queue entries taken over after a crash: the done keys stop them); then a
    # fresh delivery and worker (a restart). The same decisions each time.
    with FanoutDelivery(redis_client, s) as first:
        first.deliver(batch[:3])
        first.deliver(batch[3:])
        assert first.deliver(batch) == [False] * len(batch)
        assert first.worker.fanout.fan_out(batch) == [[]] * len(batch)
    assert deliver_and_fan_out(redis_client, s, batch) == [False] * len(batch)

    assert subscription_alert_ids(redis_client, s, every.id) == ids
    assert subscription_alert_ids(redis_client, s, daily.id) == [ids[0], ids[2], ids[6]]
    # 23:59 is hours after 09:40: delivered; 00:01 and 00:05 are within 600 s of it.
    assert subscription_alert_ids(redis_client, s, cool.id) == [ids[0], ids[2], ids[3], ids[5]]
    assert first.stats.suppressed == 5 + 4
    assert first.stats.delivered == 8 + 3 + 4
    assert first.stats.duplicates == len(batch)


def test_created_while_alerts_flow_takes_effect_within_a_second_and_deleted_stops(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    produce: Callable[..., None],
) -> None:
    s = with_signals_topic(settings(alerter_batch_max=50))
    stop = threading.Event()
    relay = threading.Thread(target=relay_signals, args=(s, stop, None), daemon=True)
    relay.start()
    t0 = datetime(2026, 2, 13, 10, 0, tzinfo=factories.HKT)
    sent = 0

    def feed(n: int, pause_s: float = 0.02) -> None:
        nonlocal sent
        for _ in range(n):
            x = factories.record_high("2513.HK", t0 + timedelta(seconds=sent), 110 + sent * 0.01)
            produce(s.signals_topic, [(b"2513.HK", x.model_dump_json().encode())])
            sent += 1
            time.sleep(pause_s)

    registry = SubscriptionRegistry(redis_client, s)
    try:
        feed(20)  # alerts are flowing: the group has joined and delivers
        wait_until(lambda: int(redis_client.xlen(s.redis_key("alerts"))) >= 20, 60)
        sub, _ = registry.create(factories.subscription_spec(filters={"symbols": ["2513.HK"]}))
        created = time.monotonic()
        stream = RedisKeys(s.namespace).stream(sub.id)
        pump = threading.Thread(target=feed, args=(100,), daemon=True)
        pump.start()
        wait_until(lambda: int(redis_client.xlen(stream)) > 0, 10)
        took = time.monotonic() - created
        assert took < 1.0, f"first alert after {took:.2f}s"
        pump.join()
        wait_until(lambda: int(redis_client.xlen(s.redis_key("alerts"))) >= sent, 30)
        assert int(redis_client.xlen(stream)) > 50

        assert registry.delete(sub.id)
        deleted_at = sent
        feed(40)
        wait_until(lambda: int(redis_client.xlen(s.redis_key("alerts"))) >= sent, 30)
        assert sent == deleted_at + 40
        assert redis_client.exists(stream) == 0, "a deleted subscription kept receiving"
        assert registry.get(sub.id) is None
    finally:
        stop.set()
        relay.join(timeout=30)


def test_webhooks_signed_retried_once_and_a_dead_receiver_slows_no_one(
    settings: Callable[..., Settings], redis_client: redis.Redis, receiver: Receiver
) -> None:
    s = webhook_settings(settings, webhook_timeout_s=30.0, webhook_max_attempts=5)
    registry = SubscriptionRegistry(redis_client, s)
    good, good_secret = registry.create(factories.webhook_spec(receiver.url("good")))
    flaky, _ = registry.create(factories.webhook_spec(receiver.url("flaky")))
    dead, _ = registry.create(factories.webhook_spec(receiver.url("dead")))
    receiver.plans["flaky"] = [500, 503]  # fails twice, then succeeds
    receiver.plans["dead"] = ["hang"] * 10  # never answers
    background = Background(s, api=False).start()
    try:
        t0 = datetime(2026, 2, 13, 10, 0, tzinfo=factories.HKT)
        batch = factories.alerts(
            [factories.record_high("2513.HK", t0 + timedelta(seconds=i), 110 + i) for i in range(5)]
        )
        sent_at = time.monotonic()
        deliver_and_fan_out(redis_client, s, batch)

        wait_until(lambda: len(receiver.bodies("good")) == 5, 10)
        good_took = time.monotonic() - sent_at
        wait_until(lambda: len(receiver.bodies("flaky")) == 5 + 2, 10)
        # Nothing more can come for these two once their outboxes are empty: an entry is
        # deleted only after its outcome (here a 2xx) is recorded.
        keys = RedisKeys(s.namespace)
        wait_until(
            lambda: all(int(redis_client.xlen(keys.outbox(sub.id))) == 0 for sub in (good, flaky)),
            10,
        )
    finally:
        background.stop()

    # The dead receiver holds its first POST forever; the others were not held up.
    assert good_took < 2.0, f"good receiver waited {good_took:.2f}s"
    assert len(receiver.bodies("dead")) == 1
    good_posts = [(h, b) for _t, h, b in receiver.received if h["path"] == "good"]
    assert [json.loads(b)["alert_id"] for _h, b in good_posts] == [a.alert_id for a in batch]
    for headers, body in good_posts:
        signature = headers[SIGNATURE_HEADER]
        assert verify(good_secret, body, signature)
        assert not verify("wrong", body, signature)
        assert not verify(good_secret, body + b" ", signature)
        # The timestamp is signed: replayed ten minutes later, the delivery is refused.
        sent = int(signature.split(",")[0].removeprefix("t="))
        assert abs(sent - time.time()) < 120
        assert not verify(good_secret, body, signature, now=sent + 600, tolerance_s=300)
        forged = signature.replace(f"t={sent}", f"t={sent + 600}")
        assert not verify(good_secret, body, forged, now=sent + 600)
        assert headers["X-Marketsignal-Subscription"] == good.id
        assert Alert.model_validate_json(body).alert_id == headers["X-Marketsignal-Alert-Id"]
    flaky_ids = [json.loads(b)["alert_id"] for b in receiver.bodies("flaky")]
    # The first alert three times (500, 503, then 200), each later one once, in order.
    first = batch[0].alert_id
    assert flaky_ids[:3] == [first] * 3
    assert flaky_ids[3:] == [a.alert_id for a in batch[1:]]
    keys = RedisKeys(s.namespace)
    assert int(redis_client.get(keys.webhook_failures(flaky.id)) or 0) == 2
    assert int(redis_client.xlen(keys.outbox(good.id))) == 0
    # The dead receiver's alerts wait in its outbox for a later worker: none lost.
    assert int(redis_client.xlen(keys.outbox(dead.id))) == 5
