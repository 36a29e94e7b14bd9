"""History (daily bars) in `Engine` against naive references written from docs/signals.md.

The references are the ones of naive_record_high / naive_divergence,
given history the way the contract words it:
- record_high: each bar is an accepted earlier price `high` at 00:00 local time of its
  date, counted only for dates before the symbol's first accepted tick; with history
  the first tick is evaluated like any other; bars never signal nor enter the debounce.
- divergence: an index's series is its bars' closes (date order) followed by its ticks;
  ytd and Nd bases are read from that series; bars are never evaluated.
Bars come mostly before the ticks, some in between (a `history load` after ticks): those
count only for dates before the symbol's first tick. Loading the same bars twice changes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from schemas.bar import Bar
from schemas.signals import IndexDivergence, RecordHigh
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.rules import Rules
from tests.unit import naive_common
from tests.unit import naive_divergence as ndiv
from tests.unit import naive_record_high as nrh
from tests.unit.detection import test_divergence_reference as div
from tests.unit.detection import test_record_high_reference as rh
from tests.unit.stage_helpers import Pipeline


@dataclass(frozen=True)
class BarEvent:
    symbol: str
    day: date
    high: float
    close: float


Event = Tick | BarEvent | str


# -- record highs ---------------------------------------------------------------------


@dataclass
class NaiveRecordHighsWithHistory(nrh.NaiveRecordHighs):
    bars: dict[str, dict[date, float]] = field(default_factory=dict)
    first_day: dict[str, date] = field(default_factory=dict)
    # symbol -> (ts, price) of bars in force; kept apart from ticks for lateness
    seeded: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)

    def bar(self, symbol: str, day: date, high: float) -> None:
        held = self.bars.setdefault(symbol, {})
        if day in held:
            return  # a second bar for a date changes nothing
        held[day] = high
        first = self.first_day.get(symbol)
        if first is not None and day < first:
            self._seed(symbol, day, high)

    def _seed(self, symbol: str, day: date, high: float) -> None:
        midnight = datetime.combine(day, time(0), tzinfo=nrh.zone_of(symbol))
        self.seeded.setdefault(symbol, []).append((midnight, high))

    def process(self, symbol: str, ts: datetime, price: float) -> nrh.RefLate | list[RecordHigh]:
        ticks = self.accepted.setdefault(symbol, [])
        if ticks:
            latest = max(t for t, _ in ticks)
            if ts < latest - timedelta(seconds=self.lateness_s):
                return nrh.RefLate(latest=latest, behind_s=(latest - ts).total_seconds())
        else:
            first = self.first_day[symbol] = nrh.local_date(symbol, ts)
            for day, high in sorted(self.bars.get(symbol, {}).items()):
                if day < first:
                    self._seed(symbol, day, high)
        earlier = self.seeded.get(symbol, []) + ticks
        out = self._classify(symbol, ts, price, earlier)
        ticks.append((ts, price))
        return out


@st.composite
def bars_for(draw: st.DrawFn, symbols: list[str], around: date, prices: list[float]) -> list[Any]:
    out = []
    for _ in range(draw(st.integers(0, 25))):
        sym = draw(st.sampled_from(symbols))
        day = around + timedelta(days=draw(st.integers(-420, 5)))
        high = draw(st.sampled_from(prices))
        close = draw(st.sampled_from([p for p in prices if p <= high]))
        out.append(BarEvent(sym, day, high, close))
    return out


def interleave(draw: st.DrawFn, ticks: list[Any], bars: list[BarEvent]) -> list[Event]:
    events: list[Event] = list(ticks)
    for bar in bars:
        # most bars before every tick; some among them (loaded while ticks flow)
        at = 0 if draw(st.integers(0, 2)) else draw(st.integers(0, len(events)))
        events.insert(at, bar)
    again = draw(st.booleans())
    if bars and again:
        events[len(events) // 2 : len(events) // 2] = list(bars)  # the same file again
    return events


@st.composite
def record_scenarios(draw: st.DrawFn) -> tuple[Rules, list[Event]]:
    rules, ticks = draw(rh.scenarios())
    symbols = sorted({t.symbol for t in ticks})
    first = ticks[0].ts.date()
    bars = draw(bars_for(symbols, first, rh.PRICES))
    return rules, interleave(draw, ticks, bars)


@settings(max_examples=250, deadline=None)
@given(record_scenarios())
def test_record_highs_with_history_match_the_naive_reference(
    scenario: tuple[Rules, list[Event]],
) -> None:
    rules, events = scenario
    engine = Engine(rules)
    reference = NaiveRecordHighsWithHistory(
        windows=rules.record_high.windows,
        step_pct=rules.record_high.step_pct,
        lateness_s=rules.ticks.allowed_lateness_s,
    )
    for i, event in enumerate(events):
        if isinstance(event, BarEvent):
            engine.add_bar(event.symbol, event.day.toordinal(), event.high, event.close)
            reference.bar(event.symbol, event.day, event.high)
            continue
        assert isinstance(event, Tick)
        got = nrh.engine_view(engine.process(event))
        want = nrh.reference_view(reference.process(event.symbol, event.ts, event.price))
        assert nrh.same(got, want), f"event #{i} {event!r}:\n engine    {got}\n reference {want}"


# -- divergence -----------------------------------------------------------------------


@dataclass
class NaivePairWithHistory(ndiv.NaivePair):
    bars: list[dict[date, float]] = field(default_factory=lambda: [{}, {}])
    first_day: list[date | None] = field(default_factory=lambda: [None, None])

    def bar(self, side: int, day: date, close: float) -> None:
        self.bars[side].setdefault(day, close)

    def arrive(self, side: int, ts: datetime, price: float) -> list[IndexDivergence]:
        if self.first_day[side] is None:
            self.first_day[side] = naive_common.local_date(self.symbol(side), ts)
        return super().arrive(side, ts, price)

    def series_bars(self, side: int) -> list[tuple[date, float]]:
        first = self.first_day[side]
        if first is None:
            return []
        return sorted((d, c) for d, c in self.bars[side].items() if d < first)

    def base(self, side: int, day: date) -> float | None:
        ticks_base = super().base(side, day)
        bars = self.series_bars(side)
        sym = self.symbol(side)
        mine = [e for e in self.evaluated if e.side == side]
        if self.rule.window == "ytd":
            if any(naive_common.local_date(sym, e.ts).year < day.year for e in mine):
                return ticks_base  # the series' last element dated in an earlier year
            earlier = [c for d, c in bars if d.year < day.year]
            if earlier:
                return earlier[-1]
            same_year = [c for d, c in bars if d.year == day.year]
            return same_year[0] if same_year else ticks_base
        limit = day - timedelta(days=int(self.rule.window[:-1]))
        tick_days = [naive_common.local_date(sym, e.ts) for e in mine]
        best = max(
            [d for d in tick_days if d <= limit] + [d for d, _ in bars if d <= limit],
            default=None,
        )
        if best is None:
            return None
        if best in tick_days:
            return ticks_base
        return dict(bars)[best]


@st.composite
def divergence_scenarios(draw: st.DrawFn) -> tuple[Rules, list[Event]]:
    rules, ticks = draw(div.divergence_scenarios())
    symbols = [rules.divergence[0].a, rules.divergence[0].b]
    bars = draw(bars_for(symbols, div.STARTS[0].date(), div.PRICES))
    return rules, interleave(draw, ticks, bars)


@settings(max_examples=250, deadline=None)
@given(divergence_scenarios())
def test_divergence_with_history_matches_the_naive_reference(
    scenario: tuple[Rules, list[Event]],
) -> None:
    rules, events = scenario
    note(f"rules {rules.divergence}\nevents {events}")
    engine = Engine(rules)
    reference = ndiv.NaiveDivergence(rules)
    reference.pairs = [NaivePairWithHistory(rule) for rule in rules.divergence]
    for i, event in enumerate(events):
        if event == div.FLUSH:
            got, want = ndiv.engine_view(engine.flush()), ndiv.reference_view(reference.flush())
            assert got == want, f"flush at #{i}:\n engine    {got}\n reference {want}"
            continue
        if isinstance(event, BarEvent):
            engine.add_bar(event.symbol, event.day.toordinal(), event.high, event.close)
            for pair in reference.pairs:
                assert isinstance(pair, NaivePairWithHistory)
                if event.symbol in (pair.rule.a, pair.rule.b):
                    pair.bar(0 if event.symbol == pair.rule.a else 1, event.day, event.close)
            continue
        assert isinstance(event, Tick)
        got = ndiv.engine_view(engine.process(event))
        want = ndiv.reference_view(reference.process(event.symbol, event.ts, event.price))
        assert got == want, f"event #{i} {event!r}:\n engine    {got}\n reference {want}"
    got, want = ndiv.engine_view(engine.flush()), ndiv.reference_view(reference.flush())
    assert got == want, f"flush:\n engine    {got}\n reference {want}"


# -- state with history survives a restart ----------------------------------------------


def feed(pipeline: Pipeline, events: list[Event]) -> list[Any]:
    """`events` through the processor's stages; a flush is a heartbeat long after them."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, BarEvent):
            bar = Bar(symbol=event.symbol, date=event.day, high=event.high, close=event.close)
            out.append(pipeline.bar(bar, 0.0))
        elif isinstance(event, Tick):
            out.append(pipeline.tick(event, 0.0))
        else:
            out.append(pipeline.heartbeat(1e9))
    return out


@settings(max_examples=100, deadline=None)
@given(divergence_scenarios(), st.data())
def test_state_with_history_survives_a_restart(
    scenario: tuple[Rules, list[Event]], data: st.DataObject
) -> None:
    rules, events = scenario
    cut = data.draw(st.integers(0, len(events)))
    whole = feed(Pipeline(rules), events)
    pipeline = Pipeline(rules)
    head = feed(pipeline, events[:cut])
    pipeline.restart()
    tail = feed(pipeline, events[cut:])
    assert head + tail == whole
