"""Factories for signals, alerts and service environments, shared by tests and benchmarks.

Each builds a valid object from defaults and takes keyword overrides, so a test names
only what it is about. `tests/support/fixtures.py` offers them as fixtures (`record_high_factory`
...), quix-streams style; benchmarks and helper modules import them directly.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from schemas.alert import Alert
from schemas.signals import AhPremium, AnySignal, IndexDivergence, PriceLevel, RecordHigh
from schemas.subscription import SubscriptionSpec
from services.runtime.settings import Settings

HKT = timezone(timedelta(hours=8))
T0 = datetime(2026, 2, 13, 10, 0, tzinfo=HKT)


def record_high(
    symbol: str = "2513.HK",
    ts: datetime = T0,
    price: float = 110.0,
    *,
    previous_high: float = 100.0,
    previous_high_ts: datetime | None = None,
    window: str = "all_time",
    change_pct: float | None = None,
) -> RecordHigh:
    """A record high; `change_pct` follows from the prices unless given."""
    return RecordHigh.model_validate(
        {
            "symbol": symbol,
            "ts": ts,
            "price": price,
            "window": window,
            "previous_high": previous_high,
            "previous_high_ts": previous_high_ts or ts - timedelta(days=1),
            "change_pct": (price / previous_high - 1) * 100 if change_pct is None else change_pct,
        }
    )


def price_level(
    subscription_id: str | None,
    ts: datetime = T0,
    price: float = 501.0,
    *,
    symbol: str = "2513.HK",
    level: float = 500.0,
    previous_price: float = 499.0,
    direction: str = "above",
    level_id: str = "0123456789abcdef",
) -> PriceLevel:
    """A firing of a subscriber's level (`above` 500 crossed from 499 to 501 by default)."""
    return PriceLevel.model_validate(
        {
            "symbol": symbol,
            "ts": ts,
            "price": price,
            "previous_price": previous_price,
            "level": level,
            "direction": direction,
            "subscription_id": subscription_id,
            "level_id": level_id,
        }
    )


def divergence(
    ts: datetime = T0,
    *,
    pair: str = "000688.SH/HSTECH.HK",
    phase: str = "open",
    direction: str = "a_over_b",
    return_a_pct: float = 8.1,
    return_b_pct: float = -2.1,
    spread_pp: float | None = None,
    threshold_pp: float = 10.0,
    window: str = "ytd",
) -> IndexDivergence:
    """An index divergence; `spread_pp` follows from the returns unless given."""
    a, b = pair.split("/")
    return IndexDivergence.model_validate(
        {
            "pair": pair,
            "a": a,
            "b": b,
            "ts": ts,
            "phase": phase,
            "direction": direction,
            "return_a_pct": return_a_pct,
            "return_b_pct": return_b_pct,
            "spread_pp": return_a_pct - return_b_pct if spread_pp is None else spread_pp,
            "threshold_pp": threshold_pp,
            "window": window,
        }
    )


def ah_premium(
    ts: datetime = T0,
    *,
    pair: str = "688981.SH/0981.HK",
    phase: str = "open",
    premium_pct: float = 35.0,
    fx: float = 1.09,
    price_a: float = 100.0,
    price_h: float | None = None,
    threshold_pct: float = 30.0,
) -> AhPremium:
    """An A/H premium; the H price, unless given, is the one that gives `premium_pct`."""
    a, h = pair.split("/")
    return AhPremium.model_validate(
        {
            "pair": pair,
            "a": a,
            "h": h,
            "ts": ts,
            "phase": phase,
            "direction": "a_premium" if premium_pct > 0 else "h_premium",
            "price_a": price_a,
            "price_h": price_a * fx / (1 + premium_pct / 100) if price_h is None else price_h,
            "fx": fx,
            "premium_pct": premium_pct,
            "threshold_pct": threshold_pct,
        }
    )


def watch_list(
    rng: random.Random,
    i: int,
    symbols: list[str],
    *,
    name: str = "watch",
    mid_wildcards: float = 0.0,
    globs: float = 0.02,
) -> SubscriptionSpec:
    """A random subscriber's record-high watch list, as the alerter benchmarks use.

    A share `mid_wildcards` of them name symbols with wildcards inside (`1?23.*`), a share
    `globs` a whole market (`*.HK`), the rest one to five symbols; half set a minimum change.
    """
    roll = rng.random()
    if roll < mid_wildcards:
        n = rng.randrange(250)
        chosen = [f"{n // 100}?{n % 100:02d}.*", f"*{n:04d}?HK"]
    elif roll < mid_wildcards + globs:
        chosen = [rng.choice(["*.HK", "*.SH", "60000*"])]
    else:
        chosen = rng.sample(symbols, rng.randint(1, 5))
    filters: dict[str, Any] = {"symbols": chosen, "kinds": ["record_high"]}
    if rng.random() < 0.5:
        filters["min_change_pct"] = round(rng.uniform(0, 2), 2)
    return SubscriptionSpec.model_validate({"name": f"{name} {i}", "filters": filters})


def subscription_spec(**data: Any) -> SubscriptionSpec:
    """A subscription named "t" unless `name` is given; every other field as given."""
    return SubscriptionSpec.model_validate({"name": "t", **data})


def webhook_spec(url: str, **data: Any) -> SubscriptionSpec:
    """A subscription named "t" that posts to `url`; every other field as given."""
    return subscription_spec(delivery={"webhook": {"url": url}}, **data)


def alert(signal: AnySignal, emitted_at: datetime | None = None) -> Alert:
    return Alert.of(signal, emitted_at or datetime.now(UTC))


def alerts(signals: Iterable[AnySignal], emitted_at: datetime | None = None) -> list[Alert]:
    return [alert(s, emitted_at) for s in signals]


def record_high_alerts(
    n: int = 1, symbol: str = "2513.HK", start: datetime = T0, price: float = 110.0
) -> list[Alert]:
    """`n` record-high alerts of `symbol` at `price`, a minute apart from `start`."""
    return alerts(record_high(symbol, start + timedelta(minutes=i), price) for i in range(n))


def _env_value(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def service_env(
    settings: Settings,
    rules: Path | None = None,
    base: Mapping[str, str] | None = None,
    **overrides: Any,
) -> dict[str, str]:
    """The environment of a `marketsignal` process that talks to `settings`' stack.

    `base` defaults to this process's environment; each override `some_setting=value`
    becomes `MARKETSIGNAL_SOME_SETTING` (lists as JSON).
    """
    env = dict(os.environ if base is None else base)
    env.update(
        MARKETSIGNAL_NAMESPACE=settings.namespace,
        MARKETSIGNAL_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        MARKETSIGNAL_REDIS_URL=settings.redis_url,
        MARKETSIGNAL_PARTITIONS=str(settings.partitions),
    )
    if settings.redis_sentinels:
        # Redis behind Sentinel: the process finds the primary as this one does.
        env.update(
            MARKETSIGNAL_REDIS_SENTINELS=",".join(f"{h}:{p}" for h, p in settings.redis_sentinels),
            MARKETSIGNAL_REDIS_SENTINEL_MASTER=settings.redis_sentinel_master,
            MARKETSIGNAL_REDIS_MIN_REPLICAS=str(settings.redis_min_replicas),
        )
    if rules is not None:
        env["MARKETSIGNAL_CONFIG"] = str(rules)
    env.update({f"MARKETSIGNAL_{k.upper()}": _env_value(v) for k, v in overrides.items()})
    return env
