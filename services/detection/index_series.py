"""One index's side of a divergence pair: its last price and the closes its bases need."""

from __future__ import annotations

import bisect
from typing import Any

# ytd bases need the close of the latest earlier year: a few years is plenty.
_YEARS_KEPT = 3


class IndexSeries:
    """What one index contributes to the pair: its last price and what bases need.

    Its price series is its bars' closes (date order) followed by its ticks
    (docs/signals.md, "History"): bars only ever precede the ticks, so ticks win
    wherever both could answer, and a bar never becomes the last price.
    """

    __slots__ = ("_ytd", "bar_years", "close_days", "closes", "last", "years")

    def __init__(self) -> None:
        self.last: float | None = None
        # year -> [first price, last price] of ticks dated in that year (ytd)
        self.years: dict[int, list[float]] = {}
        # year -> [first day, its close, last day, its close] of bars in that year (ytd)
        self.bar_years: dict[int, list[float]] = {}
        # sorted local days and their last price (Nd): a tick's price, else a bar's close
        self.close_days: list[int] = []
        self.closes: dict[int, float] = {}
        # (year, its ytd base): the base is asked at every evaluation and changes only
        # when a year's entry is created, another year's last price moves, or a bar comes.
        self._ytd: tuple[int, float | None] | None = None

    def add_bar(
        self, year: int, day: int, close: float, keep_days: int | None, other: IndexSeries
    ) -> None:
        self._ytd = None
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

    def _trim(self, keep_days: int, other: IndexSeries) -> None:
        """Drop days no evaluation can need. `other` is the pair's other index: a tick of
        it is judged against this index's days up to N before *its* date, so while it
        lags (or has not begun) they stay: one price per day, not per tick."""
        if not other.close_days:
            return
        cutoff = min(self.close_days[-1], other.close_days[-1]) - keep_days
        # The newest day before the cutoff stays: after a gap in the feed it is
        # still "the latest local date <= D - N" for the days to come.
        drop = bisect.bisect_left(self.close_days, cutoff) - 1
        if drop > 0:
            for old in self.close_days[:drop]:
                del self.closes[old]
            del self.close_days[:drop]

    def add(
        self, year: int, day: int, price: float, keep_days: int | None, other: IndexSeries
    ) -> None:
        self.last = price
        entry = self.years.get(year)
        if entry is None:
            self._ytd = None
            self.years[year] = [price, price]
            if len(self.years) > _YEARS_KEPT:
                del self.years[min(self.years)]
        else:
            entry[1] = price
            ytd = self._ytd
            if ytd is not None and ytd[0] != year:
                self._ytd = None  # another year's last price: maybe the memo's base
        if keep_days is not None:
            if day not in self.closes:
                bisect.insort(self.close_days, day)
                self.closes[day] = price
                self._trim(keep_days, other)
            self.closes[day] = price

    def ytd_base(self, year: int) -> float | None:
        ytd = self._ytd
        if ytd is not None and ytd[0] == year:
            return ytd[1]
        base = self._ytd_base(year)
        self._ytd = (year, base)
        return base

    def _ytd_base(self, year: int) -> float | None:
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
    def from_state(cls, state: dict[str, Any]) -> IndexSeries:
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
