"""One readable line per alert, as `marketsignal tail` prints it. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime

from schemas.alert import Alert
from schemas.signals import (
    AhPremium,
    IndexDivergence,
    LimitHit,
    PriceLevel,
    PriceMove,
    RecordHigh,
    VolumeSpike,
)


def when(ts: datetime) -> str:
    """In the signal's own offset (the exchange's), seconds unless the tick had a fraction."""
    return ts.isoformat(sep=" ", timespec="milliseconds" if ts.microsecond else "seconds")


def price(value: float) -> str:
    # Two decimals read like a quote; sub-unit prices would lose their digits with them.
    return f"{value:.2f}" if value >= 1 else f"{value:.6g}"


def _record_high(s: RecordHigh) -> str:
    return (
        f"{when(s.ts)}  RECORD HIGH  {s.symbol}  {price(s.price)}  {s.window}  "
        f"{s.change_pct:+.2f}% vs {price(s.previous_high)} "
        f"({s.previous_high_ts.date().isoformat()})"
    )


def _divergence(s: IndexDivergence) -> str:
    return (
        f"{when(s.ts)}  DIVERGENCE {s.phase.upper()}  {s.pair}  {s.direction}  "
        f"spread {s.spread_pp:+.1f}pp (A {s.return_a_pct:+.1f}%, B {s.return_b_pct:+.1f}%)"
    )


def _ah_premium(s: AhPremium) -> str:
    return (
        f"{when(s.ts)}  A/H PREMIUM {s.phase.upper()}  {s.pair}  {s.direction}  "
        f"premium {s.premium_pct:+.1f}% (A {price(s.price_a)} CNY x {s.fx:.4f} "
        f"vs H {price(s.price_h)} HKD; threshold {s.threshold_pct:g}%)"
    )


def _price_move(s: PriceMove) -> str:
    return (
        f"{when(s.ts)}  MOVE {s.direction.upper()} {s.level_pct:g}%  {s.symbol}  "
        f"{price(s.price)}  ({s.change_pct:+.1f}% vs {price(s.previous_close)} "
        f"on {s.previous_close_date})"
    )


def _limit_hit(s: LimitHit) -> str:
    change = (s.price / s.previous_close - 1.0) * 100.0
    return (
        f"{when(s.ts)}  LIMIT {s.direction.upper()} {s.phase.upper()}  {s.symbol}  "
        f"{price(s.price)}  ({change:+.1f}% vs {price(s.previous_close)}, "
        f"limit {price(s.limit_price)} at {s.limit_pct:g}%, seal #{s.seals})"
    )


def _volume_spike(s: VolumeSpike) -> str:
    return (
        f"{when(s.ts)}  VOLUME x{s.multiple:g}  {s.symbol}  {price(s.price)}  "
        f"volume {s.volume:,} vs {s.average_volume:,.0f} a day ({s.days}-day mean)"
    )


def _price_level(s: PriceLevel) -> str:
    # "2513.HK 501.20 crossed above 500.00 (from 498.00)": the level first, as it was set.
    return (
        f"{when(s.ts)}  LEVEL {s.direction.upper()} {price(s.level)}  {s.symbol}  "
        f"{price(s.price)}  (from {price(s.previous_price)}; level {s.level_id})"
    )


def format_alert(alert: Alert) -> str:
    signal = alert.signal
    if isinstance(signal, RecordHigh):
        return _record_high(signal)
    if isinstance(signal, AhPremium):
        return _ah_premium(signal)
    if isinstance(signal, PriceMove):
        return _price_move(signal)
    if isinstance(signal, LimitHit):
        return _limit_hit(signal)
    if isinstance(signal, VolumeSpike):
        return _volume_spike(signal)
    if isinstance(signal, PriceLevel):
        return _price_level(signal)
    return _divergence(signal)
