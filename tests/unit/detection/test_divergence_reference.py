"""`Engine` index divergence against the naive reference of naive_divergence.py.

Random scenarios (pairs in several zones, long gaps, late and out-of-order ticks,
flushes) are run through both, and their signals compared tick by tick.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.rules import DivergenceRule, Rules, TickRules
from tests.unit.naive_divergence import NaiveDivergence, engine_view, reference_view
from tests.unit.strategies import listed_or_free_price

# -- random scenarios -----------------------------------------------------------------

PAIRS = [("A.SH", "B.HK"), ("A", "B"), ("A.SH", "B")]
STARTS = [
    datetime(2024, 12, 29, 15, 0, tzinfo=UTC),  # late December in Shanghai / Hong Kong
    datetime(2024, 12, 31, 15, 59, 0, tzinfo=UTC),  # a minute before the local new year
    datetime(2024, 12, 31, 23, 58, 0, tzinfo=UTC),  # two minutes before the UTC new year
]
FLUSH = "flush"
PRICES = [90.0, 95.0, 98.0, 100.0, 101.0, 102.5, 105.0, 110.0]


PRICE = listed_or_free_price(PRICES, 85, 115, digits=1, free_one_in=3)


@st.composite
def forward_step(draw: st.DrawFn, long_gaps: bool) -> timedelta:
    kind = draw(st.sampled_from(["s", "s", "min", "h", "h", "d"]))
    if kind == "s":
        return timedelta(seconds=draw(st.integers(0, 90)))
    if kind == "min":
        return timedelta(minutes=draw(st.integers(1, 120)))
    if kind == "h":
        return timedelta(hours=draw(st.integers(1, 20)))
    return timedelta(days=draw(st.integers(1, 25 if long_gaps else 4)))


@st.composite
def divergence_scenarios(draw: st.DrawFn) -> tuple[Rules, list[Tick | str]]:
    a, b = draw(st.sampled_from(PAIRS))
    window = draw(st.sampled_from(["ytd", "ytd", "1d", "3d", "20d"]))
    lateness = draw(st.sampled_from([0, 5, 60, 3600]))
    rule = DivergenceRule(
        a=a,
        b=b,
        window=window,
        threshold_pp=draw(st.sampled_from([1.0, 2.5, 5.0])),
        hysteresis=draw(st.sampled_from([0.3, 0.8, 1.0])),
        require_opposite_signs=draw(st.booleans()),
        max_wait_s=2.0,
    )
    pairs = [rule]
    if draw(st.integers(0, 3)) == 0:
        # a second pair over the same feeds, sides swapped, other window
        other = "3d" if window == "ytd" else "ytd"
        pairs.append(rule.model_copy(update={"a": b, "b": a, "window": other}))
    rules = Rules(ticks=TickRules(allowed_lateness_s=lateness), divergence=tuple(pairs))
    start = draw(st.sampled_from(STARTS))
    long_gaps = window == "20d"
    newest = {a: start, b: start + timedelta(seconds=draw(st.integers(-30, 30)))}
    ticks: list[Tick | str] = []
    for _ in range(draw(st.integers(1, 60))):
        if draw(st.integers(0, 30)) == 0:
            ticks.append(FLUSH)  # a flush mid-stream: later ticks may sort before it
            continue
        sym = draw(st.sampled_from([a, b]))
        other = b if sym == a else a
        move = draw(st.integers(0, 7))
        if move == 0 and newest[other] > newest[sym]:
            ts = newest[sym] = newest[other]  # same ts on both feeds: a before b
        elif move <= 2:
            back = draw(
                st.one_of(
                    st.sampled_from([0, lateness, lateness + 1]),
                    st.integers(0, lateness + 10),
                )
            )
            ts = newest[sym] - timedelta(seconds=back)
        else:
            ts = newest[sym] + draw(forward_step(long_gaps))
            newest[sym] = ts
        ticks.append(Tick(symbol=sym, ts=ts, price=draw(PRICE), kind="index"))
    return rules, ticks


def run_both(rules: Rules, ticks: list[Tick | str]) -> None:
    engine = Engine(rules)
    reference = NaiveDivergence(rules)
    for i, tick in enumerate(ticks):
        if tick == FLUSH:
            got = engine_view(engine.flush())
            want = reference_view(reference.flush())
            assert got == want, f"flush at #{i}:\n engine    {got}\n reference {want}"
            continue
        assert isinstance(tick, Tick)
        got = engine_view(engine.process(tick))
        want = reference_view(reference.process(tick.symbol, tick.ts, tick.price))
        assert got == want, f"tick #{i} {tick!r}:\n engine    {got}\n reference {want}"
    got = engine_view(engine.flush())
    want = reference_view(reference.flush())
    assert got == want, f"flush:\n engine    {got}\n reference {want}"


@settings(max_examples=250, deadline=None)
@given(divergence_scenarios())
def test_divergence_matches_the_naive_reference(
    scenario: tuple[Rules, list[Tick | str]],
) -> None:
    rules, ticks = scenario
    run_both(rules, ticks)


def test_a_late_tick_of_last_year_moves_this_years_base() -> None:
    """The previous year's last price is this year's base; a late tick of that year,
    evaluated after this year's first ones, moves it for the ticks after it."""
    rule = DivergenceRule(a="A.SH", b="B.HK", window="ytd", threshold_pp=5.0, max_wait_s=2.0)
    rules = Rules(ticks=TickRules(allowed_lateness_s=3600), divergence=(rule,))
    # Local new year in Shanghai and Hong Kong: 2024-12-31 16:00 UTC.
    at = {
        minute: datetime(2024, 12, 31, 15, tzinfo=UTC) + timedelta(minutes=minute)
        for minute in (0, 30, 70, 80)
    }
    plan = [
        ("A.SH", 0, 100.0),
        ("B.HK", 0, 100.0),
        ("A.SH", 70, 101.0),
        ("B.HK", 70, 101.0),  # both in 2025: evaluated against 2024's last prices
        ("A.SH", 30, 90.0),  # 2024, late: evaluated on arrival, A's base is now 90
        ("B.HK", 80, 101.0),
        ("A.SH", 80, 101.0),  # A +12.2% against B +1%
    ]
    ticks: list[Tick | str] = [Tick(symbol=s, ts=at[m], price=p, kind="index") for s, m, p in plan]
    run_both(rules, ticks)
    engine = Engine(rules)
    signals = [s for t in ticks for s in engine.process(t)] + engine.flush()  # type: ignore[arg-type, union-attr]
    divergences = [s for s in signals if s.kind == "index_divergence"]
    # The late tick itself opens B over A (its year's base is A's first price, 100); at
    # +80 min A's 2025 base is 90, not 100: A over B.
    assert [(s.phase, s.direction, s.ts) for s in divergences] == [  # type: ignore[union-attr]
        ("open", "b_over_a", at[30]),
        ("close", "b_over_a", at[80]),
        ("open", "a_over_b", at[80]),
    ]
