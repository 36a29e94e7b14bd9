"""`Engine` A/H premium against a naive reference written straight from docs/signals.md.

The reference keeps every tick a listing ever received, and decides everything by
rescanning that whole history: a tick is held until every leg has been seen at or past
its ts (or, with a wall clock, until it waited `max_wait_s`, releasing everything ordered
before it too); a tick keyed (ts, leg) below the furthest evaluated key is evaluated on
arrival; a flush releases the rest in (ts, a, h, fx, arrival) order. At each evaluated
tick the last price of each leg is found by scanning the evaluated history backwards
(evaluation order, not the greatest ts). Lateness is judged per symbol in front, as the
contract orders it. The same runs, through the processor's stages, are cut anywhere and
resumed by a worker restarted on the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from schemas.signals import AhPremium
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import AhRule, Rules, TickRules
from tests.unit.naive_common import accept, hysteresis, zone_of
from tests.unit.stage_helpers import Pipeline, plain

A, H, FX, NOISE = "A.SH", "H.HK", "FX", "N.SZ"


# -- the naive reference --------------------------------------------------------------


@dataclass
class Arrived:
    ts: datetime
    leg: int  # 0 a, 1 h, 2 fx
    arrival: int
    price: float
    wall: float | None

    @property
    def order(self) -> tuple[datetime, int, int]:
        return (self.ts, self.leg, self.arrival)


@dataclass
class NaiveListing:
    rule: AhRule
    arrived: list[Arrived] = field(default_factory=list)
    evaluated: list[Arrived] = field(default_factory=list)
    open_direction: str | None = None

    @property
    def legs(self) -> list[str]:
        return [self.rule.a, self.rule.h] + ([self.rule.fx] if self.rule.fx else [])

    def held(self) -> list[Arrived]:
        done = {x.arrival for x in self.evaluated}
        return sorted((x for x in self.arrived if x.arrival not in done), key=lambda x: x.order)

    def arrive(self, symbol: str, ts: datetime, price: float, now: float | None) -> list[Any]:
        item = Arrived(ts, self.legs.index(symbol), len(self.arrived), price, now)
        self.arrived.append(item)
        out: list[AhPremium] = []
        if self.evaluated and (ts, item.leg) < max((x.ts, x.leg) for x in self.evaluated):
            self.evaluate(item, out)
        latest = [
            max((x.ts for x in self.arrived if x.leg == leg), default=None)
            for leg in range(len(self.legs))
        ]
        if all(t is not None for t in latest):
            mark = min(t for t in latest if t is not None)
            for held in self.held():
                if held.ts <= mark:
                    self.evaluate(held, out)
        if now is not None:
            out.extend(self.expire(now))
        return out

    def expire(self, now: float) -> list[AhPremium]:
        out: list[AhPremium] = []
        due = [
            x.order
            for x in self.held()
            if x.wall is not None and x.wall <= now - self.rule.max_wait_s
        ]
        if due:
            for held in self.held():
                if held.order <= max(due):
                    self.evaluate(held, out)
        return out

    def flush(self) -> list[AhPremium]:
        out: list[AhPremium] = []
        for held in self.held():
            self.evaluate(held, out)
        return out

    def last_price(self, leg: int) -> float | None:
        for x in reversed(self.evaluated):
            if x.leg == leg:
                return x.price
        return None

    def evaluate(self, item: Arrived, out: list[AhPremium]) -> None:
        self.evaluated.append(item)
        price_a, price_h = self.last_price(0), self.last_price(1)
        fx = self.rule.fx_rate if self.rule.fx is None else self.last_price(2)
        if price_a is None or price_h is None or fx is None:
            return
        premium = 100.0 * (price_a * fx / price_h - 1.0)
        beyond = abs(premium) >= self.rule.threshold_pct
        direction = "a_premium" if premium > 0 else "h_premium"

        def signal(phase: str, direction: str) -> AhPremium:
            return AhPremium(
                pair=f"{self.rule.a}/{self.rule.h}",
                a=self.rule.a,
                h=self.rule.h,
                ts=item.ts.astimezone(zone_of(self.legs[item.leg])),
                phase=phase,
                direction=direction,
                price_a=price_a,
                price_h=price_h,
                fx=fx,
                premium_pct=premium,
                threshold_pct=self.rule.threshold_pct,
            )

        inside = abs(premium) < self.rule.threshold_pct * self.rule.hysteresis
        self.open_direction, phases = hysteresis(
            self.open_direction, direction, beyond=beyond, inside=inside
        )
        out.extend(signal(phase, d) for phase, d in phases)


@dataclass
class NaiveAh:
    rules: Rules
    accepted: dict[str, list[datetime]] = field(default_factory=dict)
    listings: list[NaiveListing] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listings = [NaiveListing(rule) for rule in self.rules.ah]

    def process(self, symbol: str, ts: datetime, price: float, now: float | None) -> Any:
        if not accept(self.accepted, symbol, ts, self.rules.ticks.allowed_lateness_s):
            return "late"
        out: list[AhPremium] = []
        for listing in self.listings:
            if symbol in listing.legs:
                out.extend(listing.arrive(symbol, ts, price, now))
        return [s.model_dump(mode="json") for s in out]

    def expire(self, now: float) -> Any:
        return [s.model_dump(mode="json") for x in self.listings for s in x.expire(now)]

    def flush(self) -> Any:
        return [s.model_dump(mode="json") for x in self.listings for s in x.flush()]


def engine_view(result: Late | list[Any]) -> Any:
    if isinstance(result, Late):
        return "late"
    return [s.model_dump(mode="json") for s in result if isinstance(s, AhPremium)]


# -- random scenarios -----------------------------------------------------------------

FLUSH, EXPIRE = "flush", "expire"
Step = tuple[Tick, float | None] | tuple[str, float | None]
START = datetime(2025, 12, 31, 1, 30, tzinfo=UTC)
A_PRICES = [95.0, 100.0, 104.0]
H_PRICES = [75.0, 82.0, 88.0, 95.0, 100.0, 110.0, 120.0, 130.0]
FX_PRICES = [1.08, 1.09, 1.1]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Rules, list[Step]]:
    lateness = draw(st.sampled_from([0, 5, 60]))
    threshold = draw(st.sampled_from([5.0, 10.0, 20.0]))
    hysteresis = draw(st.sampled_from([0.3, 0.8, 1.0]))
    if draw(st.booleans()):
        rule = AhRule(a=A, h=H, fx=FX, threshold_pct=threshold, hysteresis=hysteresis)
    else:
        rule = AhRule(a=A, h=H, fx_rate=1.09, threshold_pct=threshold, hysteresis=hysteresis)
    listings = [rule]
    if draw(st.integers(0, 3)) == 0:
        # a second listing over the same feeds, legs swapped, a fixed rate
        listings.append(AhRule(a=H, h=A, fx_rate=0.92, threshold_pct=12.0))
    rules = Rules(ticks=TickRules(allowed_lateness_s=lateness), divergence=(), ah=tuple(listings))
    symbols = [A, H, FX, NOISE]
    newest = {s: START + timedelta(seconds=draw(st.integers(-30, 30))) for s in symbols}
    wall: float | None = 0.0 if draw(st.booleans()) else None  # streaming or backtest
    steps: list[Step] = []
    for _ in range(draw(st.integers(1, 60))):
        if wall is not None:
            wall += draw(st.sampled_from([0.0, 0.5, 1.0, 2.5]))
        roll = draw(st.integers(0, 30))
        if roll == 0:
            steps.append((FLUSH, wall))  # a flush mid-stream: later ticks may sort before it
            continue
        if roll == 1 and wall is not None:
            steps.append((EXPIRE, wall))  # a heartbeat
            continue
        sym = draw(st.sampled_from(symbols))
        move = draw(st.integers(0, 7))
        others = [newest[s] for s in symbols if s != sym and newest[s] > newest[sym]]
        if move == 0 and others:
            ts = newest[sym] = draw(st.sampled_from(others))  # same ts as another leg
        elif move <= 2:
            back = draw(st.one_of(st.sampled_from([0, lateness, lateness + 1]), st.integers(0, 70)))
            ts = newest[sym] - timedelta(seconds=back)
        else:
            unit = draw(st.sampled_from([1, 60, 3600, 86400]))
            ts = newest[sym] = newest[sym] + timedelta(seconds=unit * draw(st.integers(0, 20)))
        pool = {A: A_PRICES, H: H_PRICES, FX: FX_PRICES, NOISE: A_PRICES}[sym]
        if sym != FX and draw(st.booleans()):
            price = round(draw(st.floats(min_value=70, max_value=135)), 2)
        else:
            price = draw(st.sampled_from(pool))
        steps.append((Tick(symbol=sym, ts=ts, price=price), wall))
    return rules, steps


def engine_step(engine: Engine, step: Step) -> Any:
    what, now = step
    if what == FLUSH:
        return engine_view(engine.flush())
    if what == EXPIRE:
        assert now is not None
        return engine_view(engine.expire(now))
    assert isinstance(what, Tick)
    return engine_view(engine.process(what, now))


def reference_step(reference: NaiveAh, step: Step) -> Any:
    what, now = step
    if what == FLUSH:
        return reference.flush()
    if what == EXPIRE:
        assert now is not None
        return reference.expire(now)
    assert isinstance(what, Tick)
    return reference.process(what.symbol, what.ts, what.price, now)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_ah_premium_matches_the_naive_reference(scenario: tuple[Rules, list[Step]]) -> None:
    rules, steps = scenario
    engine, reference = Engine(rules), NaiveAh(rules)
    emitted = 0
    for i, step in enumerate(steps):
        got, want = engine_step(engine, step), reference_step(reference, step)
        assert got == want, f"step #{i} {step!r}:\n engine    {got}\n reference {want}"
        emitted += len(got) if isinstance(got, list) else 0
    got, want = engine_view(engine.flush()), reference.flush()
    assert got == want, f"final flush:\n engine    {got}\n reference {want}"
    event("signals" if emitted + len(got) else "no signal")


def pipeline_step(pipeline: Pipeline, step: Step) -> Any:
    """A step through the processor's stages, which always have a wall clock: a tick
    without one arrives at 0, and a flush is a heartbeat long after everything."""
    what, now = step
    if what == FLUSH:
        return pipeline.heartbeat(1e9)
    if what == EXPIRE:
        assert now is not None
        return pipeline.heartbeat(now)
    assert isinstance(what, Tick)
    return pipeline.tick(what, 0.0 if now is None else now)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_a_restart_mid_sequence_changes_nothing(
    scenario: tuple[Rules, list[Step]], data: st.DataObject
) -> None:
    rules, steps = scenario
    split = data.draw(st.integers(0, len(steps)))
    straight = Pipeline(rules)
    want = [pipeline_step(straight, s) for s in steps] + [straight.heartbeat(1e9)]
    first = Pipeline(rules)
    got = [pipeline_step(first, s) for s in steps[:split]]
    event("ticks held at the split" if first.held() else "nothing held at the split")
    first.restart()
    assert first.rewritten() == (first.symbols, first.pairs)  # restoring is a fixed point
    got += [pipeline_step(first, s) for s in steps[split:]] + [first.heartbeat(1e9)]
    assert got == want
    assert first.symbols == plain(straight.symbols)
    assert first.pairs == plain(straight.pairs)
