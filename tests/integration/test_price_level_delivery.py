"""A subscriber's own price level on real Redis: delivered to its subscription only.

Through the alerter's shared delivery and the fan-out worker, as `alert` runs them: a
price_level alert is claimed once, never added to the shared `alerts` stream nor
published on `alerts:*`, and reaches the subscription it names (and no other, even one
whose filters take every alert of its symbol) through that subscription's frequency.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis

from services.alerter.service import relay_signals
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.registry import SubscriptionRegistry
from tests.support import factories
from tests.support.fanout_delivery import FanoutDelivery
from tests.support.live import Subscriber, alert_ids, subscription_alert_ids
from tests.support.stack import with_signals_topic
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "services.cli"]


def test_a_level_firing_goes_to_its_subscription_only_through_its_frequency(
    settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = settings()
    keys = RedisKeys(s.namespace)
    registry = SubscriptionRegistry(redis_client, s)
    own, _ = registry.create(
        # Its filters take no record high and no level: its levels reach it all the same.
        factories.subscription_spec(
            filters={"kinds": ["price_move"]},
            frequency="cooldown",
            cooldown_s=600,
            delivery={"stream": True, "pubsub": True},
        )
    )
    # Takes every alert of 2513.HK: still none of another subscription's levels.
    other, _ = registry.create(
        factories.subscription_spec(filters={"symbols": ["2513.HK"]}, delivery={"pubsub": True})
    )
    gone, _ = registry.create(factories.subscription_spec())
    registry.delete(gone.id)
    t0 = factories.T0
    mine = factories.alerts(
        [
            factories.price_level(own.id, t0),
            factories.price_level(own.id, t0 + timedelta(minutes=5), 502),  # cooldown: no
            factories.price_level(own.id, t0 + timedelta(minutes=10), 503),  # 600 s: yes
        ]
    )
    orphan = factories.alert(factories.price_level(gone.id, t0, level_id="ffff"))
    public = factories.alert(factories.record_high("2513.HK", t0))
    watcher = Subscriber(redis_client, f"{s.namespace}alerts:*", f"{s.namespace}alerts:sync")
    try:
        with FanoutDelivery(redis_client, s) as delivery:
            assert delivery.deliver([*mine, orphan, public]) == [True] * 5
            assert delivery.deliver(mine) == [False] * 3  # a replay: claimed once
        published = watcher.sync()
    finally:
        watcher.close()

    assert alert_ids(redis_client, keys.alerts) == [public.alert_id]
    public_channels = {c for c, _ in published if c.startswith(f"{s.namespace}alerts:")}
    # The shared channels carry the record high only; the subscriptions' own channels
    # (`alerts:sub:{id}`, also under alerts:*) carry what each was delivered.
    assert f"{s.namespace}alerts:price_level:2513.HK" not in public_channels
    own_channel = keys.stream(own.id)
    own_published = [d for c, d in published if c == own_channel]
    assert len(own_published) == 2
    assert subscription_alert_ids(redis_client, s, own.id) == [
        mine[0].alert_id,
        mine[2].alert_id,
    ]
    other_published = [d for c, d in published if c == keys.stream(other.id)]
    assert [b'"kind":"record_high"' in d for d in other_published] == [True]
    assert not redis_client.exists(keys.stream(gone.id))

    # `tail --subscription` follows the subscription's own stream: its levels' firings.
    tail = subprocess.run(
        [*CLI, "tail", "--subscription", own.id, "--count", "2", "--timeout", "20"],
        env=factories.service_env(s),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.splitlines()
    assert [line.split("  ")[1:3] for line in lines] == [
        ["LEVEL ABOVE 500.00", "2513.HK"],
        ["LEVEL ABOVE 500.00", "2513.HK"],
    ]


def test_through_kafka_and_the_alerter_a_firing_reaches_its_subscription_only(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    produce: Callable[..., None],
) -> None:
    """The alerter's own loop: a price_level signal on `signals` (keyed by its symbol, as
    the processor writes it) lands in its subscription's stream, not in `alerts`."""
    s = with_signals_topic(settings())
    registry = SubscriptionRegistry(redis_client, s)
    own, _ = registry.create(factories.subscription_spec())
    signal = factories.price_level(own.id)
    public = factories.record_high("2513.HK")
    produce(
        s.signals_topic,
        [
            (b"2513.HK", signal.model_dump_json().encode()),
            (b"2513.HK", public.model_dump_json().encode()),
        ],
    )
    stop = threading.Event()
    relay = threading.Thread(target=relay_signals, args=(s, stop, None), daemon=True)
    relay.start()
    try:
        wait_until(lambda: len(subscription_alert_ids(redis_client, s, own.id)) == 2, 30)
    finally:
        stop.set()
        relay.join(timeout=20)
    keys = RedisKeys(s.namespace)
    assert alert_ids(redis_client, keys.alerts) == [factories.alert(public).alert_id]
    assert subscription_alert_ids(redis_client, s, own.id) == [
        factories.alert(signal).alert_id,
        factories.alert(public).alert_id,
    ]
