"""`Engine` record highs against a naive reference written straight from SIGNALS.md.

The reference keeps every accepted tick of every symbol in a plain list and rescans the
whole list on every tick: no deques, no daily maxima, no caches. It follows the contract
plus the project's documented choices where the contract is silent:

1. `previous_high_ts` is the smallest ts among the earlier accepted ticks (in that
   window) whose price equals `previous_high`.
2. Debounce is per (symbol, window, local date): the price of the last signal emitted in
   that window on that date. A late tick of an earlier date is judged against that
   date's memory and leaves the current date's alone.
3. Without "all_time" in `windows` an all-time high is checked as a 52w candidate; without
   "52w" only all-time highs are reported.
4. Lateness: `ts < max accepted ts - allowed_lateness_s` is late; exactly that much
   earlier is accepted.

Hypothesis drives both with random tick sequences for one to three symbols in zones with
and without DST (and a +05:45 zone), crossing local midnights, sometimes spanning more
than 365 days (exact 364/365/366-day gaps included), with out-of-order ticks inside and
beyond the allowed lateness, duplicate timestamps and tied prices. The two must agree on
every tick: late or not, and the exact signals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.signals import RecordHigh
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import RecordHighRules, Rules, TickRules

# Extra zones beyond the contract's defaults: one with DST, one with a 45-minute offset.
EXTRA_ZONES = {".NY": "America/New_York", ".KT": "Asia/Kathmandu"}
SUFFIX_ZONES = {
    ".HK": "Asia/Hong_Kong",
    ".SH": "Asia/Shanghai",
    ".SZ": "Asia/Shanghai",
    **EXTRA_ZONES,
}
# "u.hk" is UTC: suffixes match case-sensitively.
SYMBOLS = ["X.HK", "Y.SH", "Z", "W.NY", "V.KT", "u.hk"]


def zone_of(symbol: str) -> tzinfo:
    # Case-sensitive, longest suffix first (shared/SIGNALS.md): `0700.hk` is UTC.
    for suffix in sorted(SUFFIX_ZONES, key=len, reverse=True):
        if symbol.endswith(suffix):
            return ZoneInfo(SUFFIX_ZONES[suffix])
    return UTC


def local_date(symbol: str, ts: datetime) -> date:
    return ts.astimezone(zone_of(symbol)).date()


# -- the naive reference --------------------------------------------------------------


@dataclass
class RefLate:
    latest: datetime
    behind_s: float


@dataclass
class NaiveRecordHighs:
    windows: tuple[str, ...]
    step_pct: float
    lateness_s: float
    accepted: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    # (symbol, window, local date) -> price of the last signal emitted on that date
    last_emitted: dict[tuple[str, str, date], float] = field(default_factory=dict)

    def process(self, symbol: str, ts: datetime, price: float) -> RefLate | list[RecordHigh]:
        history = self.accepted.setdefault(symbol, [])
        if history:
            latest = max(t for t, _ in history)
            if ts < latest - timedelta(seconds=self.lateness_s):
                return RefLate(latest=latest, behind_s=(latest - ts).total_seconds())
        out = self._classify(symbol, ts, price, history)
        history.append((ts, price))
        return out

    def _classify(
        self, symbol: str, ts: datetime, price: float, history: list[tuple[datetime, float]]
    ) -> list[RecordHigh]:
        if not history:
            return []  # the first accepted tick sets the baseline
        day = local_date(symbol, ts)
        all_time_high = max(p for _, p in history)
        if price > all_time_high and "all_time" in self.windows:
            return self._emit(symbol, ts, price, "all_time", history, day)
        if price > all_time_high and "52w" not in self.windows:
            return []
        if "52w" not in self.windows:
            return []
        in_window = [
            (t, p) for t, p in history if day - timedelta(days=364) <= local_date(symbol, t) <= day
        ]
        if not in_window:
            return []
        if price > max(p for _, p in in_window):
            return self._emit(symbol, ts, price, "52w", in_window, day)
        return []

    def _emit(
        self,
        symbol: str,
        ts: datetime,
        price: float,
        window: str,
        pool: list[tuple[datetime, float]],
        day: date,
    ) -> list[RecordHigh]:
        q = self.last_emitted.get((symbol, window, day))
        if q is not None and not price >= q * (1 + self.step_pct / 100):
            return []  # suppressed: not re-classified into another window
        previous_high = max(p for _, p in pool)
        previous_high_ts = min(t for t, p in pool if p == previous_high)
        self.last_emitted[(symbol, window, day)] = price
        zone = zone_of(symbol)
        return [
            RecordHigh(
                symbol=symbol,
                ts=ts.astimezone(zone),
                price=price,
                window=window,
                previous_high=previous_high,
                previous_high_ts=previous_high_ts.astimezone(zone),
                change_pct=(price / previous_high - 1) * 100,
            )
        ]


# -- comparison helpers ---------------------------------------------------------------


def engine_view(result: Late | list[Any]) -> Any:
    if isinstance(result, Late):
        return ("late", result.latest.astimezone(UTC), result.behind_s)
    return [s.model_dump(mode="json") for s in result]


def reference_view(result: RefLate | list[RecordHigh]) -> Any:
    if isinstance(result, RefLate):
        return ("late", result.latest.astimezone(UTC), result.behind_s)
    return [s.model_dump(mode="json") for s in result]


def same(engine_out: Any, ref_out: Any) -> bool:
    if isinstance(engine_out, tuple) and isinstance(ref_out, tuple):
        return engine_out[1] == ref_out[1] and math.isclose(engine_out[2], ref_out[2])
    return bool(engine_out == ref_out)


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


@st.composite
def price(draw: st.DrawFn) -> float:
    if draw(st.integers(0, 3)):
        return draw(st.sampled_from(PRICES))
    return round(draw(st.floats(min_value=5, max_value=15)), 2)


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
        ticks.append(Tick(symbol=sym, ts=ts, price=draw(price())))
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
        kept = len(engine.to_state()["symbols"]["X.HK"]["days"])
        if most is None:
            assert kept >= 300  # a falling year: each day is some future window's high
        else:
            assert kept <= most
