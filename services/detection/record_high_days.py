"""A symbol's highs: the all-time high and the daily maxima behind the 52-week window.

The window is answered from daily maxima kept in a monotonic deque, so a tick costs O(1)
amortised. Only a tick dated before the newest local date seen (possible within the
allowed lateness, across midnight) needs a look at up to 365 daily maxima. Settled days
that a later day beats are compacted away.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from services.detection.timeline import lateness_days

WINDOW_DAYS = 365
# Settled days are compacted when the kept days reach twice the last compacted size plus
# this: amortised O(1) per day, and a state at most about twice its minimum.
COMPACT_SLACK = 16


class DailyHighs:
    """The part of a symbol tracker that records accepted prices and answers highs.

    A base of `SymbolTracker` (slots, no per-instance dict: a worker holds one per symbol).
    """

    __slots__ = (
        "_compact_at",
        "_deque",
        "_lateness_us",
        "_today",
        "ath",
        "ath_us",
        "days",
        "max_day",
    )

    def __init__(self, lateness_us: int) -> None:
        self._lateness_us = lateness_us
        # [max price, earliest us] of max_day: most ticks do not beat it and change nothing.
        self._today: list[Any] = [0.0, 0]
        self.ath = 0.0
        self.ath_us = 0
        # local day ordinal -> [highest price that day, earliest ts (us) at that price]
        self.days: dict[int, list[Any]] = {}
        # Days whose maximum is not beaten by a later day: front is the window's high.
        self._deque: deque[int] = deque()
        self._compact_at = COMPACT_SLACK
        self.max_day = 0

    def highs_state(self) -> dict[str, Any]:
        """This part's share of the tracker's state (JSON-friendly)."""
        return {
            "ath": self.ath,
            "ath_us": self.ath_us,
            "days": [[d, e[0], e[1]] for d, e in self.days.items()],
            "deque": list(self._deque),
            "max_day": self.max_day,
        }

    def load_highs(self, state: dict[str, Any]) -> None:
        """Take this part's share of a state `highs_state` wrote."""
        self.ath = float(state["ath"])
        self.ath_us = int(state["ath_us"])
        self.days = {int(d): [float(p), int(u)] for d, p, u in state["days"]}
        self._deque = deque(int(d) for d in state["deque"])
        self.max_day = int(state["max_day"])
        self._today = self.days.get(self.max_day, [0.0, 0])

    def _window_high(self, day: int) -> list[Any] | None:
        """[price, ts] of the highest earlier tick dated day-364 .. day, or None."""
        lo = day - (WINDOW_DAYS - 1)
        if day >= self.max_day:
            dq = self._deque
            days = self.days
            while dq and dq[0] < lo:
                dq.popleft()
            return days[dq[0]] if dq else None
        best: list[Any] | None = None
        for d, entry in self.days.items():
            if lo <= d <= day and (
                best is None or entry[0] > best[0] or (entry[0] == best[0] and entry[1] < best[1])
            ):
                best = entry
        return best

    def _record(self, us: int, day: int, price: float) -> None:
        if price > self.ath:
            self.ath = price
            self.ath_us = us
        elif price == self.ath and us < self.ath_us:
            self.ath_us = us
        days = self.days
        entry = days.get(day)
        if day > self.max_day:
            self._today = days[day] = [price, us]
            self.max_day = day
            self._push(day, price)
            self._trim()
        elif day == self.max_day:
            if entry is None:  # unreachable while max_day is kept, but cheap to guard
                self._today = days[day] = [price, us]
                self._push(day, price)
            elif price > entry[0]:
                entry[0] = price
                entry[1] = us
                if self._deque and self._deque[-1] == day:
                    self._deque.pop()
                self._push(day, price)
            elif price == entry[0] and us < entry[1]:
                entry[1] = us
        else:
            if entry is None:
                days[day] = [price, us]
            elif price > entry[0]:
                entry[0] = price
                entry[1] = us
            elif price == entry[0] and us < entry[1]:
                entry[1] = us
            else:
                return
            self._rebuild()

    def _push(self, day: int, price: float) -> None:
        # Ties stay: the earlier day holds the earliest ts at that price.
        dq = self._deque
        days = self.days
        while dq and days[dq[-1]][0] < price:
            dq.pop()
        dq.append(day)

    def _trim(self) -> None:
        # Keep what a tick still acceptable under the lateness rule could need.
        keep_from = self.max_day - (WINDOW_DAYS - 1) - lateness_days(self._lateness_us)
        days = self.days
        while days:
            first = next(iter(days))
            if first >= keep_from:
                break
            del days[first]
        # The deque only ever names kept days (it is read from both ends).
        dq = self._deque
        while dq and dq[0] < keep_from:
            dq.popleft()
        self._maybe_compact()

    def _maybe_compact(self) -> None:
        if len(self.days) >= self._compact_at:
            self.compact()
            self._compact_at = 2 * len(self.days) + COMPACT_SLACK

    def compact(self) -> None:
        """Drop settled days whose high a later settled day beats.

        A settled day is one no acceptable tick can be dated on any more. Every window a
        future tick asks about ends on an acceptable day, so a window holding a settled day
        also holds every later settled day: one of them with a higher price is always the
        better answer, and the earlier day can never be a window's high again. Ties stay
        (the earlier day has the earlier ts). A rising year keeps little; a falling one keeps
        every day, as it must (each is some future window's high). Such a day is never in the
        deque either: the later, higher day popped it.
        """
        settled_below = self.max_day - lateness_days(self._lateness_us)
        days = self.days
        best = -1.0
        dropped = []
        for day in reversed(days):
            if day >= settled_below:
                continue
            price = days[day][0]
            if price < best:
                dropped.append(day)
            else:
                best = price
        for day in dropped:
            del days[day]

    def _rebuild(self) -> None:
        """Re-sort daily maxima and rebuild the deque after an out-of-order day changed."""
        self.days = dict(sorted(self.days.items()))
        self._deque.clear()
        for day, entry in self.days.items():
            if day >= self.max_day - (WINDOW_DAYS - 1):
                self._push(day, entry[0])
        self._maybe_compact()
