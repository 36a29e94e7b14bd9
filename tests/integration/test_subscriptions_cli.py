"""`marketsignal subscribe` and `marketsignal subscriptions` against real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from schemas.signals import RecordHigh
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.registry import SubscriptionRegistry
from tests.support import factories
from tests.support.fanout_delivery import deliver_and_fan_out
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "services.cli"]


def test_subscribe_creates_and_tails_then_list_show_delete(
    settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    s = settings()
    env = factories.service_env(s)
    sub = subprocess.Popen(
        [
            *CLI,
            "subscribe",
            "--symbols",
            "2513.HK,0700.HK",
            "--kinds",
            "record_high",
            "--min-change",
            "1",
            "--once-per-day",
            "--json",
            "--count",
            "2",
            "--timeout",
            "30",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    registry = SubscriptionRegistry(redis_client, s)
    (created,) = wait_for("`subscribe` to create its subscription", registry.list_all, 20)
    assert created.frequency == "once_per_day"
    assert created.filters.symbols == ("2513.HK", "0700.HK")
    assert created.filters.min_change_pct == 1
    ts = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)

    def high(symbol: str, change: float, day: int = 0) -> RecordHigh:
        return factories.record_high(
            symbol, ts + timedelta(days=day), 100 + change, previous_high_ts=ts, change_pct=change
        )

    items = [
        high("2513.HK", 0.5),
        high("2513.HK", 2),
        high("2513.HK", 3),
        high("9988.HK", 5),
        high("0700.HK", 1.5),
    ]
    deliver_and_fan_out(redis_client, s, factories.alerts(items))
    out, err = sub.communicate(timeout=60)
    assert sub.returncode == 0, err
    assert f"subscription {created.id} created" in err
    printed = [json.loads(line)["signal"] for line in out.splitlines()]
    assert [(p["symbol"], p["change_pct"]) for p in printed] == [("2513.HK", 2), ("0700.HK", 1.5)]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    listed = cli("subscriptions", "list")
    assert listed.returncode == 0
    assert created.id in listed.stdout
    shown = cli("subscriptions", "show", created.id)
    assert json.loads(shown.stdout)["id"] == created.id
    granted = cli("subscriptions", "redis-user", created.id)
    assert granted.returncode == 0, granted.stderr
    user = json.loads(granted.stdout)
    assert user["stream"] == RedisKeys(s.namespace).stream(created.id)
    assert redis_client.acl_getuser(user["user"])["keys"] == [f"~{user['stream']}"]
    assert cli("subscriptions", "delete", created.id).returncode == 0
    assert redis_client.acl_getuser(user["user"]) is None
    assert cli("subscriptions", "show", created.id).returncode == 1
    assert cli("subscriptions", "delete", created.id).returncode == 1
    bad = cli("subscribe", "--kinds", "record_low", "--no-tail")
    assert bad.returncode == 2
    assert "filters.kinds.0" in bad.stderr


def test_subscribe_with_levels_then_list_unlevel_and_delete(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    read_topic: Callable[..., list[Any]],
) -> None:
    s = settings()
    env = factories.service_env(s)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    bad = cli("subscribe", "--above", "2513.HK=zero", "--no-tail")
    assert bad.returncode == 2
    assert "--above '2513.HK=zero'" in bad.stderr
    assert SubscriptionRegistry(redis_client, s).list_all() == []
    made = cli("subscribe", "--above", "2513.HK=500", "--below", "0700.HK=300", "--no-tail")
    assert made.returncode == 0, made.stderr
    sub_id = made.stdout.strip()
    listed = cli("subscriptions", "levels", sub_id, "--json")
    assert listed.returncode == 0, listed.stderr
    levels = sorted(
        (json.loads(line) for line in listed.stdout.splitlines()), key=lambda lv: lv["symbol"]
    )
    assert [(lv["symbol"], lv.get("above"), lv.get("below")) for lv in levels] == [
        ("0700.HK", None, 300),
        ("2513.HK", 500, None),
    ]
    first, second = (lv["level_id"] for lv in levels)
    assert cli("subscriptions", "unlevel", sub_id, first).returncode == 0
    assert cli("subscriptions", "unlevel", sub_id, first).returncode == 1
    text = cli("subscriptions", "levels", sub_id).stdout
    assert text.startswith(f"{second}  2513.HK  above 500")
    assert cli("subscriptions", "delete", sub_id).returncode == 0
    got = read_topic(s.levels_topic, expect=4)
    last = {r.key.decode(): r.value for r in got}
    assert last == {first: None, second: None}  # both disarmed: tombstones last
    assert cli("subscriptions", "levels", sub_id).returncode == 1
