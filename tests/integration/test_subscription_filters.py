"""Subscription filters on real Redis and Kafka: each stream holds exactly what its filters
select from the demo's backtest, in order, and a replay adds nothing."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from schemas.alert import alert_id_for
from schemas.signals import SIGNAL_ADAPTER, AhPremium, AnySignal
from services.alerter.service import relay_signals
from services.runtime.settings import Settings
from services.subscriptions.registry import SubscriptionRegistry
from tests.support import factories
from tests.support.live import subscription_alert_ids
from tests.support.stack import with_signals_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def backtest_signals() -> list[AnySignal]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "backtest",
            "deploy/demo/ticks.csv",
            "--config",
            "deploy/demo/rules.toml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [SIGNAL_ADAPTER.validate_json(line) for line in out.splitlines()]


def wants(f: dict[str, Any], sig: dict[str, Any]) -> bool:
    """The filter rules of docs/subscriptions.md, written again here from the doc."""

    def sym_ok(symbol: str) -> bool:
        return any(fnmatch.fnmatchcase(symbol, p) for p in f.get("symbols", []))

    if f.get("kinds") and sig["kind"] not in f["kinds"]:
        return False
    if sig["kind"] == "record_high":
        if f.get("symbols") and not sym_ok(sig["symbol"]):
            return False
        if f.get("windows") and sig["window"] not in f["windows"]:
            return False
        return bool(sig["change_pct"] >= f.get("min_change_pct", float("-inf")))
    if sig["kind"] in ("price_move", "limit_hit", "volume_spike"):
        if f.get("symbols") and not sym_ok(sig["symbol"]):
            return False
        if sig["kind"] == "volume_spike":
            return bool(sig["multiple"] >= f.get("min_multiple", float("-inf")))
        # directions and phases: only the values of the kind's own vocabulary count
        directions = [d for d in f.get("directions", []) if d in ("up", "down")]
        if directions and sig["direction"] not in directions:
            return False
        if sig["kind"] == "limit_hit":
            phases = [p for p in f.get("phases", []) if p in ("sealed", "opened")]
            return not (phases and sig["phase"] not in phases)
        return bool(sig["level_pct"] >= f.get("min_level_pct", float("-inf")))
    other = sig["h"] if sig["kind"] == "ah_premium" else sig["b"]
    if f.get("symbols") and not (sym_ok(sig["a"]) or sym_ok(other)):
        return False
    if f.get("pairs") and sig["pair"] not in f["pairs"]:
        return False
    phases = [p for p in f.get("phases", []) if p in ("open", "close")]
    if phases and sig["phase"] not in phases:
        return False
    directions = [d for d in f.get("directions", []) if d in ("a_over_b", "b_over_a")]
    if sig["kind"] == "index_divergence" and directions and sig["direction"] not in directions:
        return False
    if sig["kind"] == "ah_premium":
        return bool(abs(sig["premium_pct"]) >= f.get("min_premium_pct", 0))
    return bool(abs(sig["spread_pp"]) >= f.get("min_spread_pp", 0))


def test_each_subscription_stream_holds_exactly_what_its_filters_select(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    produce: Callable[..., None],
) -> None:
    s = with_signals_topic(settings())
    items = backtest_signals()
    assert len(items) > 100
    premiums = [x for x in items if isinstance(x, AhPremium)]
    # the size filter cuts through the demo's A/H signals: some pass, some do not
    assert 0 < sum(abs(x.premium_pct) >= 30.03 for x in premiums) < len(premiums)
    registry = SubscriptionRegistry(redis_client, s)
    overlapping: list[dict[str, Any]] = [
        {},
        {"symbols": ["2513.HK", "0700.HK"], "kinds": ["record_high"], "min_change_pct": 1},
        {"symbols": ["*.HK"]},
        {"symbols": ["*.SH"], "kinds": ["record_high"]},
        {"symbols": ["2513*"], "min_change_pct": 5},
        {"kinds": ["index_divergence"], "phases": ["open"]},
        {"symbols": ["HSTECH.HK"]},  # its record highs and the pair it belongs to
        {"pairs": ["000688.SH/HSTECH.HK"], "min_spread_pp": 1000},  # divergences: none
        {"symbols": ["9988.HK", "?700.HK"], "windows": ["52w"]},
        # A/H premiums: by kind, pair and size; by a leg's symbol and phase
        {"kinds": ["ah_premium"], "pairs": ["688981.SH/0981.HK"], "min_premium_pct": 30.03},
        {"symbols": ["0981.HK"], "phases": ["close"]},
        # the day moves: a limit-up watch list, moves of 10% or more, big volume
        {"kinds": ["limit_hit"], "directions": ["up"], "phases": ["sealed"]},
        {"symbols": ["688*"], "phases": ["opened", "close"]},
        {"kinds": ["price_move"], "min_level_pct": 10, "directions": ["up", "a_over_b"]},
        {"min_multiple": 2, "symbols": ["601127.SH"]},
    ]
    subs = [registry.create(factories.subscription_spec(filters=f))[0] for f in overlapping]
    produce(s.signals_topic, [(x.subject.encode(), x.model_dump_json().encode()) for x in items])

    stats = relay_signals(s, threading.Event(), 1.5)

    assert stats.delivered == len(items)
    for sub, f in zip(subs, overlapping, strict=True):
        expected = [alert_id_for(x) for x in items if wants(f, x.model_dump(mode="json"))]
        got = subscription_alert_ids(redis_client, s, sub.id)
        assert sorted(got) == sorted(expected), f
        assert len(got) == len(set(got)), "delivered twice"
    # Per subject, the order of the signals is kept.
    got_2513 = subscription_alert_ids(redis_client, s, subs[2].id)
    want_2513 = [alert_id_for(x) for x in items if x.subject.endswith(".HK")]
    by_subject = {alert_id_for(x): x.subject for x in items}
    for subject in ("2513.HK", "0700.HK"):
        assert [i for i in got_2513 if by_subject[i] == subject] == [
            i for i in want_2513 if by_subject[i] == subject
        ]

    # Replay from the start in a new group: nothing new anywhere.
    again = relay_signals(s.model_copy(update={"alerter_group": "replay"}), threading.Event(), 1.5)
    assert again.delivered == 0
    for sub, f in zip(subs, overlapping, strict=True):
        n = sum(wants(f, x.model_dump(mode="json")) for x in items)
        assert len(subscription_alert_ids(redis_client, s, sub.id)) == n
