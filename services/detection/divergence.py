"""Per-pair index divergence: bases, spread and hysteresis, in event-time order.

Ticks of the pair's two indices arrive in no fixed order relative to each other; the
shared reorder buffer (`ordering.EventOrder`, legs a=0 and b=1) releases them in
(ts, a-before-b, arrival) order once both indices have reached their ts or
`max_wait_s` has passed, and `flush` releases the rest at the end of a finite input.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from schemas.signals import IndexDivergence
from services.detection.index_series import IndexSeries
from services.detection.ordering import EventOrder, Held
from services.detection.rules import DivergenceRule
from services.detection.state import check_version
from services.detection.timeline import ZoneClock, lateness_days

STATE_VERSION = 1
STATE_VERSIONS = (1,)

A, B = 0, 1


class PairTracker:
    """State of one configured pair. Feed it the accepted ticks of `a` and `b`."""

    def __init__(self, rule: DivergenceRule, clocks: tuple[ZoneClock, ZoneClock], lateness_us: int):
        self.rule = rule
        self.name = rule.name
        self.clocks = clocks
        self.lateness_us = lateness_us
        self._year_of: tuple[int, int] = (0, 0)  # (day, year) memo: a year per tick is costly
        # Per side, the local day span of its last evaluated tick (most fall in it).
        self._spans: list[tuple[int, int, int]] = [(0, 0, 0), (0, 0, 0)]
        self._n = rule.window_days
        # Nd bases look back N days from a tick that may itself lag by the lateness.
        self._keep_days = None if self._n is None else self._n + lateness_days(lateness_us) + 7
        self._close_below = rule.threshold_pp * rule.hysteresis
        self.order = EventOrder(2, rule.max_wait_s)
        # When a list (charts), every evaluation appends (ts_us, r_a %, r_b %, spread_pp).
        self.trace: list[tuple[int, float, float, float]] | None = None
        self.hist = (IndexSeries(), IndexSeries())
        self.open_direction: str | None = None
        self.last_year: int | None = None
        # History per side: bars (day -> close) held until that index's first tick,
        # whose local day they must precede; then merged into `hist`.
        self.pending_bars: tuple[dict[int, float], dict[int, float]] = ({}, {})
        self.first_day: list[int | None] = [None, None]
        self.overlap = 0

    def side_of(self, symbol: str) -> int:
        if symbol == self.rule.a:
            return A
        if symbol == self.rule.b:
            return B
        raise ValueError(f"{symbol} is not in pair {self.name}")

    @property
    def pending(self) -> int:
        return self.order.pending

    # -- history ----------------------------------------------------------------------

    def add_bar(self, symbol: str, day: int, close: float) -> None:
        """A daily bar of `a` or `b` (local day ordinal, close): a base, never evaluated."""
        side = self.side_of(symbol)
        first = self.first_day[side]
        if first is None:
            self.pending_bars[side].setdefault(day, close)
        elif day >= first:
            self.overlap += 1
        else:
            self._merge_bar(side, day, close)

    def _merge_bar(self, side: int, day: int, close: float) -> None:
        self.hist[side].add_bar(
            date.fromordinal(day).year, day, close, self._keep_days, self.hist[1 - side]
        )

    def _first_tick(self, side: int, ts_us: int) -> None:
        first = self.first_day[side] = self.clocks[side].day(ts_us)
        pending = self.pending_bars[side]
        for day in sorted(pending):
            if day < first:
                self._merge_bar(side, day, pending[day])
            else:
                self.overlap += 1
        pending.clear()

    # -- the steps --------------------------------------------------------------------

    def update(
        self, symbol: str, ts_us: int, price: float, now: float | None = None
    ) -> list[IndexDivergence]:
        """Take one accepted tick of `a` or `b` (epoch microseconds); return what it releases."""
        side = self.side_of(symbol)
        if self.first_day[side] is None:
            self._first_tick(side, ts_us)
        out: list[IndexDivergence] = []
        for item in self.order.push(side, ts_us, price, now):
            self._evaluate(item, out)
        return out

    def expire(self, now: float) -> list[IndexDivergence]:
        """Release ticks that waited `max_wait_s` (and every tick ordered before them)."""
        out: list[IndexDivergence] = []
        for item in self.order.expire(now):
            self._evaluate(item, out)
        return out

    def flush(self) -> list[IndexDivergence]:
        """Evaluate everything still held (end of a finite input)."""
        out: list[IndexDivergence] = []
        for item in self.order.flush():
            self._evaluate(item, out)
        return out

    def _evaluate(self, item: Held, out: list[IndexDivergence]) -> None:
        ts_us, side, _, price, _ = item
        rule = self.rule
        span = self._spans[side]
        if span[1] <= ts_us < span[2]:
            day = span[0]
        else:
            span = self._spans[side] = self.clocks[side].day_span(ts_us)
            day = span[0]
        memo = self._year_of
        if memo[0] == day:
            year = memo[1]
        else:
            year = date.fromordinal(day).year
            self._year_of = (day, year)
        ha, hb = self.hist
        if side == A:
            ha.add(year, day, price, self._keep_days, hb)
        else:
            hb.add(year, day, price, self._keep_days, ha)
        if self._n is None and (self.last_year is None or year > self.last_year):
            if self.last_year is not None:
                self.open_direction = None  # a new year starts with no open divergence
            self.last_year = year
        if ha.last is None or hb.last is None:
            return
        if self._n is None:
            base_a, base_b = ha.ytd_base(year), hb.ytd_base(year)
        else:
            base_a, base_b = ha.nd_base(day, self._n), hb.nd_base(day, self._n)
        if base_a is None or base_b is None:
            return
        r_a = ha.last / base_a - 1.0
        r_b = hb.last / base_b - 1.0
        spread = 100.0 * (r_a - r_b)
        if self.trace is not None:
            self.trace.append((ts_us, r_a * 100.0, r_b * 100.0, spread))
        magnitude = abs(spread)
        beyond = magnitude >= rule.threshold_pp and (
            not rule.require_opposite_signs or r_a * r_b < 0
        )
        direction = "a_over_b" if spread > 0 else "b_over_a"
        current = self.open_direction
        if current is None:
            if beyond:
                self.open_direction = direction
                out.append(self._signal(item, "open", direction, r_a, r_b, spread))
        elif magnitude < self._close_below:
            self.open_direction = None
            out.append(self._signal(item, "close", current, r_a, r_b, spread))
        elif beyond and direction != current:
            out.append(self._signal(item, "close", current, r_a, r_b, spread))
            self.open_direction = direction
            out.append(self._signal(item, "open", direction, r_a, r_b, spread))

    def _signal(
        self, item: Held, phase: str, direction: str, r_a: float, r_b: float, spread: float
    ) -> IndexDivergence:
        rule = self.rule
        return IndexDivergence(
            pair=self.name,
            a=rule.a,
            b=rule.b,
            ts=self.clocks[item[1]].datetime(item[0]),
            phase=phase,
            direction=direction,
            return_a_pct=r_a * 100.0,
            return_b_pct=r_b * 100.0,
            spread_pp=spread,
            threshold_pp=rule.threshold_pp,
            window=rule.window,
        )

    # -- serialisation ----------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            **self.order.to_state(),
            "hist": [h.to_state() for h in self.hist],
            "open": self.open_direction,
            "last_year": self.last_year,
            "pending_bars": [[[d, c] for d, c in p.items()] for p in self.pending_bars],
            "first_day": list(self.first_day),
            "overlap": self.overlap,
        }

    @classmethod
    def from_state(
        cls,
        rule: DivergenceRule,
        clocks: tuple[ZoneClock, ZoneClock],
        lateness_us: int,
        state: dict[str, Any],
    ) -> PairTracker:
        check_version(state, "divergence pair", STATE_VERSIONS)
        t = cls(rule, clocks, lateness_us)
        t.order = EventOrder.from_state(2, rule.max_wait_s, state)
        t.hist = (
            IndexSeries.from_state(state["hist"][0]),
            IndexSeries.from_state(state["hist"][1]),
        )
        t.open_direction = state["open"]
        t.last_year = state["last_year"]
        pending = state.get("pending_bars", [[], []])
        t.pending_bars = (
            {int(d): float(c) for d, c in pending[0]},
            {int(d): float(c) for d, c in pending[1]},
        )
        first_day = state.get("first_day")
        if first_day is None:  # a state from before history: a side with ticks has begun
            first_day = [0 if h.last is not None else None for h in t.hist]
        t.first_day = [None if d is None else int(d) for d in first_day]
        t.overlap = int(state.get("overlap", 0))
        return t
