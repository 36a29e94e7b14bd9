"""The line `marketsignal tail` prints for each alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from schemas.alert import Alert
from schemas.signals import LimitHit, PriceMove, VolumeSpike
from services.alerter.format import format_alert
from tests.support import factories

HKT = timezone(timedelta(hours=8))
NOW = datetime(2026, 2, 13, 8, 0, tzinfo=UTC)


def test_record_high_line() -> None:
    signal = factories.record_high(
        "2513.HK",
        datetime(2026, 2, 13, 15, 58, tzinfo=HKT),
        496.0,
        previous_high=401.94,
        previous_high_ts=datetime(2026, 2, 12, 11, 0, tzinfo=HKT),
        change_pct=23.40,
    )
    assert format_alert(Alert.of(signal, NOW)) == (
        "2026-02-13 15:58:00+08:00  RECORD HIGH  2513.HK  496.00  all_time  "
        "+23.40% vs 401.94 (2026-02-12)"
    )


def test_divergence_line() -> None:
    signal = factories.divergence(datetime(2026, 2, 11, 10, 30, tzinfo=HKT), spread_pp=10.2)
    assert format_alert(Alert.of(signal, NOW)) == (
        "2026-02-11 10:30:00+08:00  DIVERGENCE OPEN  000688.SH/HSTECH.HK  a_over_b  "
        "spread +10.2pp (A +8.1%, B -2.1%)"
    )


def test_fractional_seconds_and_small_prices_keep_their_digits() -> None:
    signal = factories.record_high(
        "PENNY",
        datetime(2026, 2, 13, 15, 58, 0, 250_000, tzinfo=UTC),
        0.00123,
        window="52w",
        previous_high=0.0012,
        previous_high_ts=datetime(2026, 1, 2, tzinfo=UTC),
        change_pct=2.5,
    )
    line = format_alert(Alert.of(signal, NOW))
    assert line.startswith("2026-02-13 15:58:00.250+00:00  RECORD HIGH  PENNY  0.00123  52w  ")
    assert line.endswith("+2.50% vs 0.0012 (2026-01-02)")


def test_ah_premium_line() -> None:
    signal = factories.ah_premium(
        datetime(2026, 1, 29, 10, 3, tzinfo=HKT),
        price_a=129.78,
        price_h=109.14,
        fx=1.0935,
        premium_pct=30.03,
    )
    assert format_alert(Alert.of(signal, NOW)) == (
        "2026-01-29 10:03:00+08:00  A/H PREMIUM OPEN  688981.SH/0981.HK  a_premium  "
        "premium +30.0% (A 129.78 CNY x 1.0935 vs H 109.14 HKD; threshold 30%)"
    )


def test_day_move_lines() -> None:
    at = datetime(2026, 2, 13, 14, 2, tzinfo=HKT)
    move = PriceMove(
        symbol="2513.HK",
        ts=at,
        price=496.0,
        direction="up",
        level_pct=20.0,
        change_pct=23.383,
        previous_close=402.0,
        previous_close_date="2026-02-12",
    )
    assert format_alert(Alert.of(move, NOW)) == (
        "2026-02-13 14:02:00+08:00  MOVE UP 20%  2513.HK  496.00  (+23.4% vs 402.00 on 2026-02-12)"
    )
    sealed = LimitHit(
        symbol="688795.SH",
        ts=at,
        price=24.56,
        direction="up",
        phase="sealed",
        limit_price=24.56,
        limit_pct=20.0,
        previous_close=20.47,
        seals=2,
    )
    assert format_alert(Alert.of(sealed, NOW)) == (
        "2026-02-13 14:02:00+08:00  LIMIT UP SEALED  688795.SH  24.56  "
        "(+20.0% vs 20.47, limit 24.56 at 20%, seal #2)"
    )
    spike = VolumeSpike(
        symbol="2513.HK",
        ts=at,
        price=496.0,
        volume=4_400_000,
        average_volume=2_000_000.0,
        multiple=2.0,
        days=5,
    )
    assert format_alert(Alert.of(spike, NOW)) == (
        "2026-02-13 14:02:00+08:00  VOLUME x2  2513.HK  496.00  "
        "volume 4,400,000 vs 2,000,000 a day (5-day mean)"
    )


def test_price_level_line() -> None:
    signal = factories.price_level(
        "0123456789abcdef",
        datetime(2026, 2, 13, 14, 2, tzinfo=HKT),
        501.2,
        previous_price=498.0,
        level_id="00aa11bb22cc33dd",
    )
    assert format_alert(Alert.of(signal, NOW)) == (
        "2026-02-13 14:02:00+08:00  LEVEL ABOVE 500.00  2513.HK  501.20  "
        "(from 498.00; level 00aa11bb22cc33dd)"
    )
