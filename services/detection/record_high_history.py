"""History (daily bars) merged into a symbol's highs as accepted earlier prices.

A bar's `high` counts as a price at 00:00 local time of its date, only for dates before
the symbol's first accepted tick. Bars that come before any tick wait (`pending`) until
that first tick fixes the date they must precede.
"""

from __future__ import annotations

from typing import Any, Literal

from services.detection.record_high_days import WINDOW_DAYS, DailyHighs
from services.detection.timeline import ZoneClock, lateness_days

# What became of a bar: waiting for the first tick, merged, dated on or after the first
# tick's date (ticks are the truth there), or a second bar for a date that has one.
BarOutcome = Literal["held", "applied", "overlap", "duplicate"]


class BarHistory(DailyHighs):
    """The history part of a symbol tracker (a base of `SymbolTracker`)."""

    __slots__ = ("bar_days", "first_day", "overlap", "pending")

    clock: ZoneClock

    def __init__(self, lateness_us: int) -> None:
        super().__init__(lateness_us)
        # Bars held until the first tick (day -> high), the first tick's local day, the
        # days that have had a bar (a bitmap from the first such day, so a second bar is
        # known whatever the trimming), and how many bars overlapped ticks.
        self.pending: dict[int, float] | None = None
        self.first_day: int | None = None
        self.bar_days: tuple[int, int] = (0, 0)
        self.overlap = 0

    def history_state(self) -> dict[str, Any]:
        """This part's share of the tracker's state (JSON-friendly)."""
        return {
            "pending": None if self.pending is None else [[d, h] for d, h in self.pending.items()],
            "first_day": self.first_day,
            "bar_days": [self.bar_days[0], format(self.bar_days[1], "x")],
            "overlap": self.overlap,
        }

    def load_history(self, state: dict[str, Any]) -> None:
        """Take this part's share of a state `history_state` wrote (a state from before
        history has none of it: no bars)."""
        pending = state.get("pending")
        self.pending = None if pending is None else {int(d): float(h) for d, h in pending}
        self.first_day = state.get("first_day")
        lo, bits = state.get("bar_days", [0, "0"])
        self.bar_days = (int(lo), int(bits, 16))
        self.overlap = int(state.get("overlap", 0))

    def add_bar(self, day: int, high: float) -> BarOutcome:
        """Merge a daily bar (local day ordinal, high) under the contract's history rules."""
        if self._has_bar(day):
            return "duplicate"
        if self.first_day is None:
            if self.pending is None:
                self.pending = {}
            if day in self.pending:
                return "duplicate"
            self.pending[day] = high
            return "held"
        if day >= self.first_day:
            self.overlap += 1
            return "overlap"
        self._seed(day, high)
        return "applied"

    def _has_bar(self, day: int) -> bool:
        lo, bits = self.bar_days
        return bits != 0 and day >= lo and (bits >> (day - lo)) & 1 == 1

    def _mark_bar(self, day: int) -> None:
        lo, bits = self.bar_days
        if bits == 0:
            self.bar_days = (day, 1)
        elif day < lo:
            self.bar_days = (day, (bits << (lo - day)) | 1)
        else:
            self.bar_days = (lo, bits | (1 << (day - lo)))

    def _apply_pending(self, first_day: int) -> bool:
        """At the first tick: merge held bars dated before its day; True if any was."""
        pending, self.pending = self.pending, None
        if not pending:
            return False
        applied = False
        for day in sorted(pending):
            if day >= first_day:
                self.overlap += 1
            else:
                self._seed(day, pending[day])
                applied = True
        return applied

    def _seed(self, day: int, high: float) -> None:
        """A bar as an accepted earlier price `high` at 00:00 local time of `day`."""
        self._mark_bar(day)
        us = self.clock.midnight_us(day)
        if self.days and day < self.max_day - (WINDOW_DAYS - 1) - lateness_days(self._lateness_us):
            # Older than any 52w window still to come: only the all-time high can use it.
            if high > self.ath or (high == self.ath and us < self.ath_us):
                self.ath, self.ath_us = high, us
            return
        if not self.days:
            self.ath, self.ath_us = high, us
        self._record(us, day, high)
