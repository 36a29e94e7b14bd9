"""`Engine` record highs against the naive reference of tests/unit/naive_record_high.py.

Hypothesis drives both with random tick sequences for one to three symbols in zones with
and without DST (and a +05:45 zone), crossing local midnights, sometimes spanning more
than 365 days (exact 364/365/366-day gaps included), with out-of-order ticks inside and
beyond the allowed lateness, duplicate timestamps and tied prices. The two must agree on
every tick: late or not, and the exact signals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.rules import RecordHighRules, Rules, TickRules
from tests.unit.naive_record_high import (
    EXTRA_ZONES,
    SYMBOLS,
    NaiveRecordHighs,
    engine_view,
    reference_view,
    same,
)
from tests.unit.strategies import listed_or_free_price

# -- random scenarios -----------------------------------------------------------------

STARTS = [
    datetime(2024, 12, 31, 15, 59, 30, tzinfo=UTC),  # midnight in Hong Kong / Shanghai
    datetime(2024, 12, 31, 23, 59, 40, tzinfo=UTC),  # midnight in UTC
    datetime(2024, 2, 28, 18, 14, 50, tzinfo=UTC),  # near midnight in Kathmandu, leap year
    datetime(2024, 3, 10, 4, 0, 0, tzinfo=UTC),  # New York springs forward
    datetime(2024, 11, 3, 3, 59, 50, tzinfo=UTC),  # New York midnight, falls back that night
]
PRICES = [9.0, 10.0, 10.1, 10.5, 11.0, 11.11, 12.0, 12.6]
LATENESS = [0, 5, 90, 7200, 172800]


@st.composite
def forward_step(draw: st.DrawFn) -> timedelta:
    kind = draw(st.sampled_from(["s", "s", "min", "h", "d", "year"]))
    if kind == "s":
        return timedelta(seconds=draw(st.integers(0, 120)))
    if kind == "min":
        return timedelta(minutes=draw(st.integers(1, 90)))
    if kind == "h":
        return timedelta(hours=draw(st.integers(1, 30)))
    if kind == "d":
        days = draw(st.integers(1, 200))
        return timedelta(days=days, seconds=draw(st.sampled_from([0, 0, 1, -1, 3600])))
    return timedelta(days=draw(st.sampled_from([364, 365, 366])))


@st.composite
def backward_step(draw: st.DrawFn, lateness: int) -> timedelta:
    choices = [lateness, lateness + 1, max(lateness - 1, 0), 0]
    exact = st.sampled_from(choices).map(lambda s: timedelta(seconds=s))
    anything = st.integers(0, 2 * lateness + 30).map(lambda s: timedelta(seconds=s))
    # a microsecond either side of the limit (a negative step is just a tick ahead)
    micro = st.integers(-2, 2).map(lambda us: timedelta(seconds=lateness, microseconds=us))
    return draw(st.one_of(exact, anything, micro))


PRICE = listed_or_free_price(PRICES, 5, 15, digits=2, free_one_in=4)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Rules, list[Tick]]:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3, unique=True))
    lateness = draw(st.sampled_from(LATENESS))
    windows = draw(
        st.sampled_from([("all_time", "52w"), ("52w", "all_time"), ("all_time",), ("52w",), ()])
    )
    step_pct = draw(st.sampled_from([0.0, 1.0, 5.0]))
    rules = Rules(
        ticks=TickRules(allowed_lateness_s=lateness),
        record_high=RecordHighRules(windows=windows, step_pct=step_pct),
        divergence=(),
        timezones=EXTRA_ZONES,
    )
    start = draw(st.sampled_from(STARTS))
    newest = {s: start + timedelta(seconds=draw(st.integers(0, 30))) for s in symbols}
    ticks = []
    for _ in range(draw(st.integers(1, 60))):
        sym = draw(st.sampled_from(symbols))
        if draw(st.integers(0, 3)) == 0:
            ts = newest[sym] - draw(backward_step(lateness))
        else:
            ts = newest[sym] + draw(forward_step())
            newest[sym] = ts
        ticks.append(Tick(symbol=sym, ts=ts, price=draw(PRICE)))
    return rules, ticks


def run_both(rules: Rules, ticks: list[Tick], *, compact_always: bool = False) -> None:
    engine = Engine(rules)
    reference = NaiveRecordHighs(
        windows=rules.record_high.windows,
        step_pct=rules.record_high.step_pct,
        lateness_s=rules.ticks.allowed_lateness_s,
    )
    for i, tick in enumerate(ticks):
        got = engine_view(engine.process(tick))
        want = reference_view(reference.process(tick.symbol, tick.ts, tick.price))
        assert same(got, want), f"tick #{i} {tick!r}:\n engine    {got}\n reference {want}"
        if compact_always:
            for tracker in engine.symbols.values():
                tracker.compact()
    assert engine.flush() == []


@settings(max_examples=250, deadline=None)
@given(scenarios())
def test_record_highs_match_the_naive_reference(scenario: tuple[Rules, list[Tick]]) -> None:
    rules, ticks = scenario
    run_both(rules, ticks)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 800), st.sampled_from([10.0, 10.5, 11.0, 12.0])),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["X.HK", "Z", "W.NY"]),
)
def test_daily_ticks_over_two_years_match(days_prices: list[tuple[int, float]], sym: str) -> None:
    """Ticks on sorted random days: the 52-week window boundary is crossed in both ways."""
    start = datetime(2023, 1, 1, 12, 0, tzinfo=UTC)
    ticks = [
        Tick(symbol=sym, ts=start + timedelta(days=d), price=p)
        for d, p in sorted(days_prices, key=lambda dp: dp[0])
    ]
    rules = Rules(divergence=(), timezones=EXTRA_ZONES)
    run_both(rules, ticks)


@st.composite
def long_daily_scenarios(draw: st.DrawFn) -> tuple[Rules, list[Tick]]:
    """Months of roughly daily ticks, some late across midnight: settled days get compacted."""
    sym = draw(st.sampled_from(["X.HK", "Z", "W.NY"]))
    lateness = draw(st.sampled_from([7200, 172800, 259200]))
    windows = draw(st.sampled_from([("all_time", "52w"), ("52w",), ("52w",)]))
    rules = Rules(
        ticks=TickRules(allowed_lateness_s=lateness),
        record_high=RecordHighRules(windows=windows, step_pct=0.0),
        divergence=(),
        timezones=EXTRA_ZONES,
    )
    newest = draw(st.sampled_from(STARTS))
    level = 10.0
    ticks = []
    for _ in range(draw(st.integers(40, 160))):
        level = max(1.0, round(level * (1 + draw(st.integers(-6, 5)) / 100), 2))
        if draw(st.integers(0, 2)) == 0:
            ts = newest - draw(backward_step(lateness))
        else:
            newest = newest + timedelta(hours=draw(st.integers(4, 30)))
            ts = newest
        ticks.append(Tick(symbol=sym, ts=ts, price=level))
    return rules, ticks


@settings(max_examples=60, deadline=None)
@given(long_daily_scenarios())
def test_compacted_daily_history_matches_the_reference(
    scenario: tuple[Rules, list[Tick]],
) -> None:
    rules, ticks = scenario
    run_both(rules, ticks)
    # Compaction at any moment, not only when the tracker chooses to, changes nothing.
    run_both(rules, ticks, compact_always=True)


def test_compaction_keeps_a_rising_year_small_and_a_falling_year_whole() -> None:
    """The memory claim behind compaction, and the case where nothing may be dropped."""
    start = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)
    rules = Rules(divergence=(), timezones=EXTRA_ZONES)
    for prices, most in (
        ([10.0 + d for d in range(300)], 40),
        ([500.0 - d for d in range(300)], None),
    ):
        engine = Engine(rules)
        for d, p in enumerate(prices):
            engine.process(Tick(symbol="X.HK", ts=start + timedelta(days=d), price=p))
        kept = len(engine.symbols["X.HK"].to_state()["days"])
        if most is None:
            assert kept >= 300  # a falling year: each day is some future window's high
        else:
            assert kept <= most
