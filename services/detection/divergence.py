"""Per-pair index divergence: bases, spread and hysteresis, in event-time order.

Ticks of the pair's two indices arrive in no fixed order relative to each other; the
shared reorder buffer (`ordering.EventOrder`, legs a=0 and b=1) releases them in
(ts, a-before-b, arrival) order once both indices have reached their ts or
`max_wait_s` has passed, and `flush` releases the rest at the end of a finite input.
"""

from __future__ import annotations

import bisect
from datetime import date
from typing import Any

from schemas.signals import IndexDivergence
from services.detection.ordering import EventOrder, Held
from services.detection.rules import DivergenceRule
from services.detection.timeline import ZoneClock, lateness_days

A, B = 0, 1
# ytd bases need the close of the latest earlier year: a few years is plenty.
_YEARS_KEPT = 3


class _History:
    """What one index contributes to the pair: its last price and what bases need.

    Its price series is its bars' closes (date order) followed by its ticks
    (docs/signals.md, "History"): bars only ever precede the ticks, so ticks win
    wherever both could answer, and a bar never becomes the last price.
    """

    __slots__ = ("bar_years", "close_days", "closes", "last", "years")

    def __init__(self) -> None:
        self.last: float | None = None
        # year -> [first price, last price] of ticks dated in that year (ytd)
        self.years: dict[int, list[float]] = {}
        # year -> [first day, its close, last day, its close] of bars in that year (ytd)
        self.bar_years: dict[int, list[float]] = {}
        # sorted local days and their last price (Nd): a tick's price, else a bar's close
        self.close_days: list[int] = []
        self.closes: dict[int, float] = {}

    def add_bar(
        self, year: int, day: int, close: float, keep_days: int | None, other: int | None
    ) -> None:
        entry = self.bar_years.get(year)
        if entry is None:
            self.bar_years[year] = [day, close, day, close]
            if len(self.bar_years) > _YEARS_KEPT:
                del self.bar_years[min(self.bar_years)]
        else:
            if day < entry[0]:
                entry[0], entry[1] = day, close
            if day > entry[2]:
                entry[2], entry[3] = day, close
        if keep_days is not None and day not in self.closes:
            bisect.insort(self.close_days, day)
            self.closes[day] = close
            self._trim(keep_days, other)  # drops it again if older than what is kept

    def _trim(self, keep_days: int, other: int | None) -> None:
        """Drop days no evaluation can need. `other` is the other index's newest day: a
        tick of it is judged against this index's days up to N before *its* date, so
        while it lags (or has not begun) they stay: one price per day, not per tick."""
        if other is None:
            return
        cutoff = min(self.close_days[-1], other) - keep_days
        # The newest day before the cutoff stays: after a gap in the feed it is
        # still "the latest local date <= D - N" for the days to come.
        drop = bisect.bisect_left(self.close_days, cutoff) - 1
        if drop > 0:
            for old in self.close_days[:drop]:
                del self.closes[old]
            del self.close_days[:drop]

    def add(
        self, year: int, day: int, price: float, keep_days: int | None, other: int | None
    ) -> None:
        self.last = price
        entry = self.years.get(year)
        if entry is None:
            self.years[year] = [price, price]
            if len(self.years) > _YEARS_KEPT:
                del self.years[min(self.years)]
        else:
            entry[1] = price
        if keep_days is not None:
            if day not in self.closes:
                bisect.insort(self.close_days, day)
                self.closes[day] = price
                self._trim(keep_days, other)
            self.closes[day] = price

    def ytd_base(self, year: int) -> float | None:
        earlier = [y for y in self.years if y < year]
        if earlier:
            return self.years[max(earlier)][1]
        bars = self.bar_years
        if bars:
            earlier = [y for y in bars if y < year]
            if earlier:
                return bars[max(earlier)][3]
            first_bar = bars.get(year)
            if first_bar is not None:
                return first_bar[1]
        entry = self.years.get(year)
        return entry[0] if entry is not None else None

    def nd_base(self, day: int, n: int) -> float | None:
        i = bisect.bisect_right(self.close_days, day - n)
        return self.closes[self.close_days[i - 1]] if i else None

    def to_state(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "years": [[y, f, la] for y, (f, la) in self.years.items()],
            "closes": [[d, self.closes[d]] for d in self.close_days],
            "bar_years": [[y, *e] for y, e in self.bar_years.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _History:
        h = cls()
        h.last = state["last"]
        h.years = {int(y): [float(f), float(la)] for y, f, la in state["years"]}
        h.closes = {int(d): float(p) for d, p in state["closes"]}
        h.close_days = sorted(h.closes)
        h.bar_years = {
            int(y): [int(d0), float(c0), int(d1), float(c1)]
            for y, d0, c0, d1, c1 in state.get("bar_years", [])
        }
        return h


class PairTracker:
    """State of one configured pair. Feed it the accepted ticks of `a` and `b`."""

    def __init__(self, rule: DivergenceRule, clocks: tuple[ZoneClock, ZoneClock], lateness_us: int):
        self.rule = rule
        self.name = rule.name
        self.clocks = clocks
        self.lateness_us = lateness_us
        self._year_of: tuple[int, int] = (0, 0)  # (day, year) memo: a year per tick is costly
        self._n = rule.window_days
        # Nd bases look back N days from a tick that may itself lag by the lateness.
        self._keep_days = None if self._n is None else self._n + lateness_days(lateness_us) + 7
        self._close_below = rule.threshold_pp * rule.hysteresis
        self.order = EventOrder(2, rule.max_wait_s)
        # When a list (charts), every evaluation appends (ts_us, r_a %, r_b %, spread_pp).
        self.trace: list[tuple[int, float, float, float]] | None = None
        self.hist = (_History(), _History())
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
            date.fromordinal(day).year, day, close, self._keep_days, self._newest(1 - side)
        )

    def _newest(self, side: int) -> int | None:
        days = self.hist[side].close_days
        return days[-1] if days else None

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
        day = self.clocks[side].day(ts_us)
        memo = self._year_of
        if memo[0] == day:
            year = memo[1]
        else:
            year = date.fromordinal(day).year
            self._year_of = (day, year)
        self.hist[side].add(year, day, price, self._keep_days, self._newest(1 - side))
        if self._n is None and (self.last_year is None or year > self.last_year):
            if self.last_year is not None:
                self.open_direction = None  # a new year starts with no open divergence
            self.last_year = year
        ha, hb = self.hist
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
            "v": 1,
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
        t = cls(rule, clocks, lateness_us)
        t.order = EventOrder.from_state(2, rule.max_wait_s, state)
        t.hist = (_History.from_state(state["hist"][0]), _History.from_state(state["hist"][1]))
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
