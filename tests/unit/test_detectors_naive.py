"""The detectors against a deliberately naive reading of docs/signals.md.

The references below rescan all history on every tick and keep no clever structure:
they are slow and obviously right. Hypothesis drives both with random tick sequences
(midnights, >365-day spans, out-of-order and late ticks, ties, several zones) and the
outputs must agree tick by tick.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.signals import IndexDivergence, RecordHigh
from schemas.tick import Tick
from schemas.zones import ExchangeZones
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import DivergenceRule, RecordHighRules, Rules, TickRules

ZONES = ExchangeZones()
T0 = datetime(2024, 12, 28, 1, 0, tzinfo=UTC)


def local_date(symbol: str, ts: datetime) -> date:
    return ts.astimezone(ZONES.zone_for(symbol)).date()


# -- tick sequences -------------------------------------------------------------------

steps = st.one_of(
    st.integers(min_value=1, max_value=90).map(lambda s: timedelta(seconds=s)),
    st.integers(min_value=1, max_value=20).map(lambda h: timedelta(hours=h)),
    st.integers(min_value=1, max_value=200).map(lambda d: timedelta(days=d)),
    st.integers(min_value=-12, max_value=-1).map(lambda s: timedelta(seconds=s)),
)
prices = st.one_of(
    st.sampled_from([10.0, 10.5, 11.0, 12.0, 12.1, 13.0, 9.0, 15.0]),
    st.floats(min_value=5, max_value=20, allow_nan=False).map(lambda p: round(p, 2)),
)


@st.composite
def sequences(draw: st.DrawFn, symbols: list[str], max_size: int = 80) -> list[Tick]:
    n = draw(st.integers(min_value=1, max_value=max_size))
    clocks = dict.fromkeys(symbols, T0)
    ticks = []
    for _ in range(n):
        sym = draw(st.sampled_from(symbols))
        clocks[sym] = clocks[sym] + draw(steps)
        ticks.append(Tick(symbol=sym, ts=clocks[sym], price=draw(prices), kind="index"))
    return ticks


# -- record highs, naively ------------------------------------------------------------


def naive_record_highs(ticks: list[Tick], rules: Rules) -> list[Any]:
    lateness = timedelta(seconds=rules.ticks.allowed_lateness_s)
    windows = rules.record_high.windows
    step = rules.record_high.step_pct
    history: dict[str, list[tuple[datetime, float, date]]] = {}
    # (symbol, window, local date) -> price of that date's last signal
    debounce: dict[tuple[str, str, date], float] = {}
    out: list[Any] = []
    for tick in ticks:
        hist = history.setdefault(tick.symbol, [])
        if hist and tick.ts < max(t for t, _, _ in hist) - lateness:
            out.append("late")
            continue
        day = local_date(tick.symbol, tick.ts)
        result = None
        if hist:
            candidate = None
            top = max(p for _, p, _ in hist)
            if "all_time" in windows and tick.price > top:
                candidate = ("all_time", top, min(t for t, p, _ in hist if p == top))
            elif "52w" in windows:
                window = [(t, p) for t, p, d in hist if day - timedelta(days=364) <= d <= day]
                if window:
                    high = max(p for _, p in window)
                    if tick.price > high:
                        candidate = ("52w", high, min(t for t, p in window if p == high))
            if candidate is not None:
                name, prev, prev_ts = candidate
                last = debounce.get((tick.symbol, name, day))
                if not (last and tick.price < last * (1 + step / 100)):
                    debounce[(tick.symbol, name, day)] = tick.price
                    result = (name, tick.price, prev, prev_ts, (tick.price / prev - 1) * 100)
        hist.append((tick.ts, tick.price, day))
        out.append(result)
    return out


def engine_record_highs(ticks: list[Tick], rules: Rules) -> list[Any]:
    engine = Engine(rules)
    out: list[Any] = []
    for tick in ticks:
        got = engine.process(tick)
        if isinstance(got, Late):
            out.append("late")
            continue
        highs = [s for s in got if isinstance(s, RecordHigh)]
        assert len(highs) <= 1
        out.append(
            None
            if not highs
            else (
                highs[0].window,
                highs[0].price,
                highs[0].previous_high,
                highs[0].previous_high_ts,
                highs[0].change_pct,
            )
        )
    return out


window_sets = st.sampled_from([("all_time", "52w"), ("52w",), ("all_time",), ("52w", "all_time")])


@settings(max_examples=300, deadline=None)
@given(
    ticks=sequences(["X.HK", "Y.SH", "Z"]),
    windows=window_sets,
    step=st.sampled_from([0.0, 1.0, 5.0]),
    lateness=st.sampled_from([0.0, 5.0, 30.0]),
)
def test_record_highs_agree_with_the_naive_reference(
    ticks: list[Tick], windows: tuple[str, ...], step: float, lateness: float
) -> None:
    rules = Rules(
        ticks=TickRules(allowed_lateness_s=lateness),
        record_high=RecordHighRules(windows=windows, step_pct=step),  # type: ignore[arg-type]
        divergence=(),
    )
    assert engine_record_highs(ticks, rules) == naive_record_highs(ticks, rules)


@settings(max_examples=100, deadline=None)
@given(ticks=sequences(["X.HK"], max_size=120), split=st.integers(min_value=0, max_value=120))
def test_state_survives_a_json_round_trip_mid_sequence(ticks: list[Tick], split: int) -> None:
    rules = Rules(divergence=())
    straight = engine_record_highs(ticks, rules)
    engine = Engine(rules)
    out: list[Any] = []
    for i, tick in enumerate(ticks):
        if i == split:
            engine = Engine.from_state(rules, json.loads(json.dumps(engine.to_state())))
        got = engine.process(tick)
        out.append("late" if isinstance(got, Late) else [s.model_dump() for s in got])
    expected = [s if s == "late" else ([] if s is None else None) for s in straight]
    assert [o if o in ("late", []) else None for o in out] == expected


# -- index divergence, naively --------------------------------------------------------


@dataclass
class NaivePair:
    rule: DivergenceRule
    seen: dict[str, datetime] = field(default_factory=dict)
    held: list[tuple[datetime, int, int, Tick]] = field(default_factory=list)
    last_key: tuple[datetime, int] | None = None
    evaluated: dict[str, list[tuple[datetime, float, date]]] = field(default_factory=dict)
    state: str | None = None
    max_year: int | None = None
    seq: int = 0
    out: list[tuple[Any, ...]] = field(default_factory=list)

    def side(self, tick: Tick) -> int:
        return 0 if tick.symbol == self.rule.a else 1

    def arrive(self, tick: Tick) -> None:
        self.seq += 1
        self.seen[tick.symbol] = max(self.seen.get(tick.symbol, tick.ts), tick.ts)
        key = (tick.ts, self.side(tick))
        if self.last_key is not None and key < self.last_key:
            self.evaluate(tick)
        else:
            self.held.append((tick.ts, self.side(tick), self.seq, tick))
        if len(self.seen) == 2:
            mark = min(self.seen.values())
            self.release(lambda item: item[0] <= mark)

    def release(self, due: Any) -> None:
        ready = sorted(item for item in self.held if due(item))
        self.held = [item for item in self.held if not due(item)]
        for item in ready:
            self.evaluate(item[3])

    def flush(self) -> None:
        self.release(lambda item: True)

    def base(self, symbol: str, day: date) -> float | None:
        ticks = self.evaluated.get(symbol, [])
        if self.rule.window == "ytd":
            earlier = [t for t in ticks if t[2].year < day.year]
            if earlier:
                last_year = max(t[2].year for t in earlier)
                return [t for t in earlier if t[2].year == last_year][-1][1]
            same = [t for t in ticks if t[2].year == day.year]
            return same[0][1] if same else None
        n = int(self.rule.window[:-1])
        before = [t for t in ticks if t[2] <= day - timedelta(days=n)]
        if not before:
            return None
        latest = max(t[2] for t in before)
        return [t for t in before if t[2] == latest][-1][1]

    def evaluate(self, tick: Tick) -> None:
        key = (tick.ts, self.side(tick))
        self.last_key = key if self.last_key is None else max(self.last_key, key)
        day = local_date(tick.symbol, tick.ts)
        self.evaluated.setdefault(tick.symbol, []).append((tick.ts, tick.price, day))
        if self.rule.window == "ytd" and (self.max_year is None or day.year > self.max_year):
            if self.max_year is not None:
                self.state = None
            self.max_year = day.year
        a, b = self.rule.a, self.rule.b
        if a not in self.evaluated or b not in self.evaluated:
            return
        base_a, base_b = self.base(a, day), self.base(b, day)
        if base_a is None or base_b is None:
            return
        r_a = self.evaluated[a][-1][1] / base_a - 1
        r_b = self.evaluated[b][-1][1] / base_b - 1
        spread = 100 * (r_a - r_b)
        beyond = abs(spread) >= self.rule.threshold_pp and (
            not self.rule.require_opposite_signs or r_a * r_b < 0
        )
        direction = "a_over_b" if spread > 0 else "b_over_a"
        sig = (tick.ts, r_a * 100, r_b * 100, spread)
        if self.state is None:
            if beyond:
                self.state = direction
                self.out.append(("open", direction, *sig))
        elif abs(spread) < self.rule.threshold_pp * self.rule.hysteresis:
            self.out.append(("close", self.state, *sig))
            self.state = None
        elif beyond and direction != self.state:
            self.out.append(("close", self.state, *sig))
            self.state = direction
            self.out.append(("open", direction, *sig))


def naive_divergence(ticks: list[Tick], rules: Rules) -> list[tuple[Any, ...]]:
    lateness = timedelta(seconds=rules.ticks.allowed_lateness_s)
    latest: dict[str, datetime] = {}
    pair = NaivePair(rules.divergence[0])
    for tick in ticks:
        if tick.symbol in latest and tick.ts < latest[tick.symbol] - lateness:
            continue
        latest[tick.symbol] = max(latest.get(tick.symbol, tick.ts), tick.ts)
        pair.arrive(tick)
    pair.flush()
    return pair.out


def engine_divergence(ticks: list[Tick], rules: Rules) -> list[tuple[Any, ...]]:
    signals = Engine(rules).run(ticks)
    return [
        (s.phase, s.direction, s.ts, s.return_a_pct, s.return_b_pct, s.spread_pp)
        for s in signals
        if isinstance(s, IndexDivergence)
    ]


@settings(max_examples=300, deadline=None)
@given(
    ticks=sequences(["A.SH", "B.HK"], max_size=100),
    window=st.sampled_from(["ytd", "1d", "3d", "20d"]),
    threshold=st.sampled_from([1.0, 3.0, 10.0]),
    hysteresis=st.sampled_from([0.5, 0.8, 1.0]),
    opposite=st.booleans(),
)
def test_divergence_agrees_with_the_naive_reference(
    ticks: list[Tick], window: str, threshold: float, hysteresis: float, opposite: bool
) -> None:
    rule = DivergenceRule(
        a="A.SH",
        b="B.HK",
        window=window,
        threshold_pp=threshold,
        hysteresis=hysteresis,
        require_opposite_signs=opposite,
    )
    rules = Rules(divergence=(rule,))
    assert engine_divergence(ticks, rules) == naive_divergence(ticks, rules)


@settings(max_examples=100, deadline=None)
@given(
    ticks=sequences(["A.SH", "B.HK"], max_size=100), split=st.integers(min_value=0, max_value=100)
)
def test_divergence_state_with_held_ticks_survives_a_round_trip(
    ticks: list[Tick], split: int
) -> None:
    rules = Rules(divergence=(DivergenceRule(a="A.SH", b="B.HK", threshold_pp=2.0),))
    straight = [s.model_dump_json() for s in Engine(rules).run(ticks)]
    engine = Engine(rules)
    got: list[str] = []
    for i, tick in enumerate(ticks):
        if i == split:
            engine = Engine.from_state(rules, json.loads(json.dumps(engine.to_state())))
        result = engine.process(tick)
        if not isinstance(result, Late):
            got.extend(s.model_dump_json() for s in result)
    got.extend(s.model_dump_json() for s in engine.flush())
    assert got == straight
