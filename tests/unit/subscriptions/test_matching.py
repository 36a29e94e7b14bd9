"""The subscription index returns exactly what a scan of every subscription returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.signals import (
    SIGNAL_KINDS,
    AnySignal,
    LimitHit,
    PriceMove,
    RecordHigh,
    VolumeSpike,
)
from schemas.subscription import Filters, Subscription, SubscriptionSpec
from services.subscriptions.matching import SubscriptionIndex, accepts, symbol_matches
from tests.support import factories

T0 = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)
SYMBOLS = ["2513.HK", "0700.HK", "000688.SH", "HSTECH.HK", "600000.SH", "AAPL", "HSI.HK"]
PAIRS = ["000688.SH/HSTECH.HK", "600000.SH/HSI.HK"]
LISTINGS = ["688981.SH/0981.HK", "600000.SH/HSI.HK"]  # one shares its name with a pair
PATTERNS = [
    *SYMBOLS,
    *["*.HK", "*.SH", "0*", "2513*", "*", "?700.HK", "*00*", "HS?.*", "*.SZ", "2?13.*"],
    *["*0?00.HK", "*T?C*", "?*", "*6*8*", "6*0.SH", "??"],
]

record_highs = st.builds(
    lambda sym, window, chg: factories.record_high(
        sym, T0, 100 * (1 + chg / 100), window=window, change_pct=chg
    ),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["all_time", "52w"]),
    st.floats(0, 30),
)
divergences = st.builds(
    lambda pair, phase, direction, spread: factories.divergence(
        T0, pair=pair, phase=phase, direction=direction, return_a_pct=spread, return_b_pct=0.0
    ),
    st.sampled_from(PAIRS),
    st.sampled_from(["open", "close"]),
    st.sampled_from(["a_over_b", "b_over_a"]),
    st.floats(-30, 30),
)
premiums = st.builds(
    lambda pair, phase, premium: factories.ah_premium(
        T0, pair=pair, phase=phase, premium_pct=premium
    ),
    st.sampled_from(LISTINGS),
    st.sampled_from(["open", "close"]),
    st.floats(-60, 60),
)
moves = st.builds(
    lambda sym, direction, level: PriceMove(
        symbol=sym,
        ts=T0,
        price=110.0,
        direction=direction,
        level_pct=level,
        change_pct=level + 0.5,
        previous_close=100.0,
        previous_close_date="2026-02-12",
    ),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["up", "down"]),
    st.sampled_from([5.0, 10.0, 20.0]),
)
limit_hits = st.builds(
    lambda sym, direction, phase, seals: LimitHit(
        symbol=sym,
        ts=T0,
        price=11.0,
        direction=direction,
        phase=phase,
        limit_price=11.0,
        limit_pct=10.0,
        previous_close=10.0,
        seals=seals,
    ),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["up", "down"]),
    st.sampled_from(["sealed", "opened"]),
    st.integers(1, 3),
)
spikes = st.builds(
    lambda sym, multiple: VolumeSpike(
        symbol=sym,
        ts=T0,
        price=10.0,
        volume=1000,
        average_volume=100.0,
        multiple=multiple,
        days=5,
    ),
    st.sampled_from(SYMBOLS),
    st.sampled_from([2.0, 5.0]),
)
signals = st.one_of(record_highs, divergences, premiums, moves, limit_hits, spikes)


def _subset(values: list[str], max_size: int = 3) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(values), max_size=max_size, unique=True).map(tuple)


filters = st.builds(
    Filters,
    symbols=_subset(PATTERNS),
    kinds=_subset(list(SIGNAL_KINDS), 4),
    windows=_subset(["all_time", "52w"], 2),
    min_change_pct=st.none() | st.floats(0, 20),
    pairs=_subset(PAIRS + LISTINGS[:1], 2),
    phases=_subset(["open", "close", "sealed", "opened"], 3),
    directions=_subset(["a_over_b", "b_over_a", "up", "down"], 3),
    min_spread_pp=st.none() | st.floats(0, 20),
    min_premium_pct=st.none() | st.floats(0, 50),
    min_level_pct=st.none() | st.sampled_from([0.0, 5.0, 10.0, 15.0]),
    min_multiple=st.none() | st.sampled_from([1.0, 2.0, 3.0, 5.0]),
)


def subscription(i: int, f: Filters) -> Subscription:
    return Subscription(id=f"{i:016x}", name=f"s{i}", filters=f, created_at=T0, updated_at=T0)


@settings(max_examples=300, deadline=None)
@given(st.lists(filters, max_size=40), st.lists(signals, min_size=1, max_size=20))
def test_index_returns_exactly_what_a_scan_returns(
    all_filters: list[Filters], sample: list[AnySignal]
) -> None:
    subs = [subscription(i, f) for i, f in enumerate(all_filters)]
    index = SubscriptionIndex(subs)
    for signal in sample:
        scanned = [s.id for s in subs if accepts(s.filters, signal)]
        assert [s.id for s in index.match(signal)] == sorted(scanned)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(filters, max_size=30),
    st.lists(st.tuples(st.booleans(), st.integers(0, 29), filters), max_size=30),
    st.lists(signals, min_size=1, max_size=10),
)
def test_changes_applied_one_at_a_time_match_a_rebuilt_index(
    initial: list[Filters],
    changes: list[tuple[bool, int, Filters]],
    sample: list[AnySignal],
) -> None:
    """The alerter applies each create, update and delete to its index: no full reload."""
    live = {i: subscription(i, f) for i, f in enumerate(initial)}
    index = SubscriptionIndex(live.values())
    for delete, i, f in changes:
        if delete:
            live.pop(i, None)
            index.remove(f"{i:016x}")
        else:
            live[i] = subscription(i, f)
            index.add(live[i])
    rebuilt = SubscriptionIndex(live.values())
    assert len(index) == len(rebuilt)
    for signal in sample:
        assert [s.id for s in index.match(signal)] == [s.id for s in rebuilt.match(signal)]
        scanned = sorted(s.id for s in live.values() if accepts(s.filters, signal))
        assert [s.id for s in index.match(signal)] == scanned


def test_mid_string_globs_are_indexed_not_scanned() -> None:
    """10,000 globs with a wildcard in the middle: an alert looks at the few that can match."""
    subs = [
        subscription(i, Filters(symbols=(f"{i:04d}?{i % 7}.*", f"*{i:04d}?.HK", f"*x{i:04d}*")))
        for i in range(10_000)
    ]
    index = SubscriptionIndex(subs)
    kind = index._kinds["record_high"]
    assert not kind.scan
    assert not kind.all
    signal = RecordHigh(
        symbol="0042a0.HK",
        ts=T0,
        price=110.0,
        window="all_time",
        previous_high=100.0,
        previous_high_ts=T0 - timedelta(days=1),
        change_pct=10.0,
    )
    looked_at = {s.id for s in kind.candidates((signal.symbol,), None)}
    assert 0 < len(looked_at) < 20
    assert [s.id for s in index.match(signal)] == [f"{42:016x}"]


@pytest.mark.parametrize(
    ("pattern", "symbol", "expected"),
    [
        ("*.HK", "2513.HK", True),
        ("*.HK", "000688.SH", False),
        ("2513.HK", "2513.HK", True),
        ("2513.HK", "2513.hk", False),
        ("?700.HK", "0700.HK", True),
        ("0*", "0700.HK", True),
        ("*", "AAPL", True),
    ],
)
def test_symbol_globs(pattern: str, symbol: str, expected: bool) -> None:
    assert symbol_matches(pattern, symbol) is expected


def test_divergence_matches_a_symbol_filter_on_either_index() -> None:
    div = factories.divergence(
        T0, pair="000688.SH/HSTECH.HK", return_a_pct=8, return_b_pct=-3, spread_pp=11
    )
    assert accepts(Filters(symbols=("HSTECH.HK",)), div)
    assert accepts(Filters(symbols=("*.SH",), min_spread_pp=11), div)
    assert not accepts(Filters(symbols=("*.SH",), min_spread_pp=11.5), div)
    assert not accepts(Filters(symbols=("2513.HK",)), div)


def test_ah_premium_filters_by_kind_pair_legs_phase_and_minimum_premium() -> None:
    ah = factories.ah_premium(
        T0, pair="688981.SH/0981.HK", premium_pct=30.8, price_a=120.0, price_h=100.0, fx=1.09
    )
    assert accepts(Filters(kinds=("ah_premium",)), ah)
    assert not accepts(Filters(kinds=("index_divergence", "record_high")), ah)
    assert accepts(Filters(pairs=("688981.SH/0981.HK",)), ah)
    assert not accepts(Filters(pairs=("000688.SH/HSTECH.HK",)), ah)
    assert accepts(Filters(symbols=("0981.HK",)), ah)
    assert accepts(Filters(symbols=("688981.SH",)), ah)
    assert not accepts(Filters(symbols=("CNYHKD",)), ah)
    assert accepts(Filters(min_premium_pct=30.8), ah)
    assert not accepts(Filters(min_premium_pct=31), ah)
    negative = ah.model_copy(update={"premium_pct": -35.0, "direction": "h_premium"})
    assert accepts(Filters(min_premium_pct=31), negative)  # the size, either way
    assert not accepts(Filters(phases=("close",)), ah)
    # filters of other kinds do not restrict it
    assert accepts(Filters(min_spread_pp=50, min_change_pct=50, windows=("52w",)), ah)
    index = SubscriptionIndex([subscription(1, Filters(pairs=("688981.SH/0981.HK",)))])
    assert [s.id for s in index.match(ah)] == [f"{1:016x}"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "filters": {"symbols": ["bad symbol"]}}, "filters.symbols.0"),
        ({"name": "x", "filters": {"kinds": ["nope"]}}, "filters.kinds.0"),
        ({"name": "x", "filters": {"min_change_pct": -1}}, "filters.min_change_pct"),
        ({"name": "x", "filters": {"pairs": ["A"]}}, "filters.pairs.0"),
        ({"name": "x", "filters": {"min_premium_pct": -1}}, "filters.min_premium_pct"),
        ({"name": "x", "frequency": "cooldown"}, "cooldown_s"),
        ({"name": "x", "cooldown_s": 5}, "cooldown_s"),
        ({"name": "x", "frequency": "hourly"}, "frequency"),
        ({"name": "x", "expires_at": "2026-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "delivery": {"stream": False}}, "delivery"),
        ({"name": "x", "delivery": {"webhook": {"url": "ftp://x"}}}, "delivery.webhook.url"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)
def test_spec_errors_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SubscriptionSpec.model_validate(body)
    locs = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert field in locs


def test_day_move_filters_and_the_vocabulary_of_each_kind() -> None:
    up = PriceMove(
        symbol="2513.HK",
        ts=T0,
        price=123.4,
        direction="up",
        level_pct=20.0,
        change_pct=23.4,
        previous_close=100.0,
        previous_close_date="2026-02-12",
    )
    sealed = LimitHit(
        symbol="688795.SH",
        ts=T0,
        price=24.56,
        direction="up",
        phase="sealed",
        limit_price=24.56,
        limit_pct=20.0,
        previous_close=20.47,
        seals=2,
    )
    spike = VolumeSpike(
        symbol="2513.HK",
        ts=T0,
        price=496.0,
        volume=4_400_000,
        average_volume=2e6,
        multiple=2.0,
        days=5,
    )
    divergence = factories.divergence(T0, phase="open", direction="a_over_b")
    assert accepts(Filters(symbols=("*.HK",), min_level_pct=20.0), up)
    assert not accepts(Filters(min_level_pct=20.5), up)
    assert not accepts(Filters(directions=("down",)), up)
    assert accepts(Filters(min_multiple=2.0), spike)
    assert not accepts(Filters(min_multiple=5.0), spike)
    assert not accepts(Filters(symbols=("600*",)), sealed)
    limit_up_watch = Filters(kinds=("limit_hit",), directions=("up",), phases=("sealed",))
    assert accepts(limit_up_watch, sealed)
    assert not accepts(limit_up_watch, sealed.model_copy(update={"phase": "opened"}))
    # `phases` and `directions` restrict a kind only by the values of its own vocabulary.
    assert accepts(Filters(phases=("sealed",)), divergence)
    assert not accepts(Filters(phases=("sealed", "close")), divergence)
    assert accepts(Filters(directions=("a_over_b",)), up)
    assert not accepts(Filters(directions=("a_over_b", "down")), up)
    # filters of other kinds leave them alone
    assert accepts(Filters(min_change_pct=50.0, min_spread_pp=99.0), sealed)
