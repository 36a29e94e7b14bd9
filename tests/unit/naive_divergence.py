"""A naive index-divergence reference, written straight from docs/signals.md.

The reference collects the accepted ticks of the pair, replays the reorder rule literally
(hold a tick until both indices have been seen at or past its ts; a tick keyed before the
greatest evaluated (ts, side) is evaluated on arrival; flush the rest in order at the end)
and, at every evaluated tick, rescans the whole evaluated history of each index for its
base and last price. It follows the project's documented choices where the contract is
silent:

5. Bases and last prices come from *evaluated* ticks, in evaluation order. ytd base of x
   at local date D: the last evaluated tick of x in the greatest local year of x below
   D.year; else the first evaluated tick of x in D.year. Nd base: the last evaluated
   price of x on the greatest local date of x <= D - N days. The current tick counts.
6. ytd: an evaluated tick whose year exceeds every earlier evaluated year resets an open
   state to none silently, before its own evaluation.
7. Release order (ts, a before b, arrival) under the watermark min(latest ts of a,
   latest ts of b); a tick keyed (ts, side) below the greatest evaluated key is
   evaluated on arrival.
8. Direction is a_over_b if spread_pp > 0, else b_over_a.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from schemas.signals import IndexDivergence
from services.detection.record_high import Late
from services.detection.rules import DivergenceRule, Rules
from tests.unit.naive_common import accept, hysteresis, local_date, zone_of

# -- the naive reference --------------------------------------------------------------


@dataclass
class Arrived:
    ts: datetime
    side: int  # 0 for a, 1 for b
    arrival: int
    price: float

    @property
    def order(self) -> tuple[datetime, int, int]:
        return (self.ts, self.side, self.arrival)


@dataclass
class NaivePair:
    rule: DivergenceRule
    latest_seen: list[datetime | None] = field(default_factory=lambda: [None, None])
    held: list[Arrived] = field(default_factory=list)
    evaluated: list[Arrived] = field(default_factory=list)
    arrivals: int = 0
    open_direction: str | None = None

    def symbol(self, side: int) -> str:
        return self.rule.a if side == 0 else self.rule.b

    def arrive(self, side: int, ts: datetime, price: float) -> list[IndexDivergence]:
        item = Arrived(ts, side, self.arrivals, price)
        self.arrivals += 1
        seen = self.latest_seen[side]
        self.latest_seen[side] = ts if seen is None else max(seen, ts)
        out: list[IndexDivergence] = []
        evaluated_keys = [(e.ts, e.side) for e in self.evaluated]
        if evaluated_keys and (ts, side) < max(evaluated_keys):
            self.evaluate(item, out)
        else:
            self.held.append(item)
        seen_a, seen_b = self.latest_seen
        if seen_a is not None and seen_b is not None:
            watermark = min(seen_a, seen_b)
            ready = sorted((h for h in self.held if h.ts <= watermark), key=lambda h: h.order)
            for h in ready:
                self.held.remove(h)
                self.evaluate(h, out)
        return out

    def flush(self) -> list[IndexDivergence]:
        out: list[IndexDivergence] = []
        for h in sorted(self.held, key=lambda h: h.order):
            self.evaluate(h, out)
        self.held = []
        return out

    def year_of(self, item: Arrived) -> int:
        return local_date(self.symbol(item.side), item.ts).year

    def base(self, side: int, day: date) -> float | None:
        mine = [e for e in self.evaluated if e.side == side]
        sym = self.symbol(side)
        if self.rule.window == "ytd":
            earlier = [e for e in mine if local_date(sym, e.ts).year < day.year]
            if earlier:
                best_year = max(local_date(sym, e.ts).year for e in earlier)
                return [e for e in earlier if local_date(sym, e.ts).year == best_year][-1].price
            same_year = [e for e in mine if local_date(sym, e.ts).year == day.year]
            return same_year[0].price if same_year else None
        n = int(self.rule.window[:-1])
        limit = day - timedelta(days=n)
        candidates = [e for e in mine if local_date(sym, e.ts) <= limit]
        if not candidates:
            return None
        best_day = max(local_date(sym, e.ts) for e in candidates)
        return [e for e in candidates if local_date(sym, e.ts) == best_day][-1].price

    def evaluate(self, item: Arrived, out: list[IndexDivergence]) -> None:
        rule = self.rule
        year = self.year_of(item)
        if (
            rule.window == "ytd"
            and self.evaluated
            and year > max(self.year_of(e) for e in self.evaluated)
        ):
            self.open_direction = None  # a new year starts with no open divergence
        self.evaluated.append(item)
        last = [[e.price for e in self.evaluated if e.side == side][-1:] for side in (0, 1)]
        if not last[0] or not last[1]:
            return
        day = local_date(self.symbol(item.side), item.ts)
        base_a, base_b = self.base(0, day), self.base(1, day)
        if base_a is None or base_b is None:
            return
        r_a = last[0][0] / base_a - 1
        r_b = last[1][0] / base_b - 1
        spread_pp = 100 * (r_a - r_b)
        beyond = abs(spread_pp) >= rule.threshold_pp and (
            not rule.require_opposite_signs or r_a * r_b < 0
        )
        direction = "a_over_b" if spread_pp > 0 else "b_over_a"

        def signal(phase: str, direction: str) -> IndexDivergence:
            return IndexDivergence(
                pair=f"{rule.a}/{rule.b}",
                a=rule.a,
                b=rule.b,
                ts=item.ts.astimezone(zone_of(self.symbol(item.side))),
                phase=phase,
                direction=direction,
                return_a_pct=100 * r_a,
                return_b_pct=100 * r_b,
                spread_pp=spread_pp,
                threshold_pp=rule.threshold_pp,
                window=rule.window,
            )

        inside = abs(spread_pp) < rule.threshold_pp * rule.hysteresis
        self.open_direction, phases = hysteresis(
            self.open_direction, direction, beyond=beyond, inside=inside
        )
        out.extend(signal(phase, d) for phase, d in phases)


@dataclass
class NaiveDivergence:
    """Lateness per symbol (as the contract orders it) in front of each pair."""

    rules: Rules
    accepted: dict[str, list[datetime]] = field(default_factory=dict)
    pairs: list[NaivePair] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pairs = [NaivePair(rule) for rule in self.rules.divergence]

    def process(self, symbol: str, ts: datetime, price: float) -> str | list[IndexDivergence]:
        if not accept(self.accepted, symbol, ts, self.rules.ticks.allowed_lateness_s):
            return "late"
        out: list[IndexDivergence] = []
        for pair in self.pairs:
            if symbol in (pair.rule.a, pair.rule.b):
                out.extend(pair.arrive(0 if symbol == pair.rule.a else 1, ts, price))
        return out

    def flush(self) -> list[IndexDivergence]:
        out: list[IndexDivergence] = []
        for pair in self.pairs:
            out.extend(pair.flush())
        return out


def engine_view(result: Late | list[Any]) -> Any:
    if isinstance(result, Late):
        return "late"
    return per_pair(s for s in result if isinstance(s, IndexDivergence))


def reference_view(result: str | list[IndexDivergence]) -> Any:
    if isinstance(result, str):
        return result
    return per_pair(result)


def per_pair(signals: Iterable[IndexDivergence]) -> dict[str, list[Any]]:
    # The contract orders signals within a pair; across pairs any order is valid (two rules
    # over the same feeds, sides swapped, may release held ticks in either order).
    grouped: dict[str, list[Any]] = {}
    for s in signals:
        grouped.setdefault(s.pair, []).append(s.model_dump(mode="json"))
    return grouped
