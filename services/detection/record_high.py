"""Per-symbol state: the lateness guard and record-high detection (all-time and 52-week).

The 52-week window is answered from daily maxima kept in a monotonic deque, so a tick
costs O(1) amortised. Only a tick dated before the newest local date seen (possible
within the allowed lateness, across midnight) needs a look at up to 365 daily maxima.

History (daily bars) is merged as accepted earlier prices: a bar's `high` at 00:00 local
time of its date, only for dates before the symbol's first accepted tick. Bars that come
before any tick wait (`pending`) until that first tick fixes the date they must precede.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas.signals import RecordHigh
from services.detection.timeline import ZoneClock, lateness_days

WINDOW_DAYS = 365
# Settled days are compacted when the kept days reach twice the last compacted size plus
# this: amortised O(1) per day, and a state at most about twice its minimum.
COMPACT_SLACK = 16

# What became of a bar: waiting for the first tick, merged, dated on or after the first
# tick's date (ticks are the truth there), or a second bar for a date that has one.
BarOutcome = Literal["held", "applied", "overlap", "duplicate"]


@dataclass(frozen=True, slots=True)
class RecordHighConfig:
    windows: tuple[str, ...]
    step_pct: float
    lateness_us: int

    @property
    def all_time(self) -> bool:
        return "all_time" in self.windows

    @property
    def weeks52(self) -> bool:
        return "52w" in self.windows


@dataclass(frozen=True, slots=True)
class Late:
    """A tick refused because it is older than the symbol's newest accepted ts allows."""

    behind_s: float
    latest: datetime

    def detail(self, allowed_s: float) -> str:
        return (
            f"ts is {self.behind_s:g}s before the latest accepted ts "
            f"{self.latest.isoformat()} of this symbol (allowed lateness {allowed_s:g}s)"
        )


class SymbolTracker:
    """Everything the contract keeps per symbol. `update` is the only mutator."""

    __slots__ = (
        "_all_time",
        "_compact_at",
        "_day",
        "_deque",
        "_hi",
        "_lateness_us",
        "_lo",
        "_step",
        "_today",
        "_weeks52",
        "ath",
        "ath_us",
        "bar_days",
        "clock",
        "config",
        "days",
        "debounce",
        "first_day",
        "latest_us",
        "max_day",
        "overlap",
        "pending",
        "symbol",
    )

    def __init__(self, symbol: str, config: RecordHighConfig, clock: ZoneClock) -> None:
        self.symbol = symbol
        self.config = config
        self.clock = clock
        self._step = 1.0 + config.step_pct / 100.0
        self._all_time = config.all_time
        self._weeks52 = config.weeks52
        self._lateness_us = config.lateness_us
        # The local day of the last tick and the us span it covers: most ticks fall in it.
        self._day, self._lo, self._hi = 0, 0, 0
        # [max price, earliest us] of max_day: most ticks do not beat it and change nothing.
        self._today: list[Any] = [0.0, 0]
        self.latest_us: int | None = None
        self.ath = 0.0
        self.ath_us = 0
        # local day ordinal -> [highest price that day, earliest ts (us) at that price]
        self.days: dict[int, list[Any]] = {}
        # Days whose maximum is not beaten by a later day: front is the window's high.
        self._deque: deque[int] = deque()
        self._compact_at = COMPACT_SLACK
        self.max_day = 0
        # window -> local day -> price of the last signal emitted on that day. Per day, so
        # a late tick of yesterday neither uses nor resets today's memory.
        self.debounce: dict[str, dict[int, float]] = {}
        # History: bars held until the first tick (day -> high), the first tick's local
        # day, the days that have had a bar (a bitmap from the first such day, so a
        # second bar is known whatever the trimming), and how many bars overlapped ticks.
        self.pending: dict[int, float] | None = None
        self.first_day: int | None = None
        self.bar_days: tuple[int, int] = (0, 0)
        self.overlap = 0

    # -- the step ---------------------------------------------------------------------

    def update(self, us: int, price: float) -> Late | RecordHigh | None:
        """Take one tick of this symbol (epoch microseconds, price) in arrival order.

        Returns `Late` if the tick is refused (state untouched), a signal if it is a
        record high that survives debounce, else None.
        """
        latest = self.latest_us
        if latest is None:
            day = self._locate(us)
            self.first_day = day
            if not self._apply_pending(day):
                self._first(us, day, price)
                return None
            # With history the first tick is judged like any other: bars are its baseline.
            latest = self.latest_us = us
        if us < latest - self._lateness_us:
            return Late(behind_s=(latest - us) / 1e6, latest=self.clock.datetime(latest))
        if us > latest:
            self.latest_us = us
        day = self._day if self._lo <= us < self._hi else self._locate(us)

        signal: RecordHigh | None = None
        if self._all_time and price > self.ath:
            signal = self._emit(us, day, price, "all_time", self.ath, self.ath_us)
        elif self._weeks52:
            high = self._window_high(day)
            if high is not None and price > high[0]:
                signal = self._emit(us, day, price, "52w", high[0], high[1])
        if day == self.max_day and price < self._today[0]:
            return signal  # below today's high, hence below every high: nothing to record
        self._record(us, day, price)
        return signal

    # -- history ----------------------------------------------------------------------

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

    def _locate(self, us: int) -> int:
        self._day, self._lo, self._hi = self.clock.day_span(us)
        return self._day

    def _first(self, us: int, day: int, price: float) -> None:
        self.latest_us = us
        self.ath = price
        self.ath_us = us
        self._today = self.days[day] = [price, us]
        self._deque.append(day)
        self.max_day = day

    def _emit(
        self, us: int, day: int, price: float, window: str, prev: float, prev_us: int
    ) -> RecordHigh | None:
        memory = self.debounce.get(window)
        if memory is None:
            memory = self.debounce[window] = {}
        last = memory.get(day)
        if last is not None and price < last * self._step:
            return None
        memory[day] = price
        if len(memory) > 1:
            # Only a date an acceptable (not late) tick can still have needs its memory.
            keep_from = max(day, self.max_day) - lateness_days(self._lateness_us)
            for old in [d for d in memory if d < keep_from]:
                del memory[old]
        return RecordHigh(
            symbol=self.symbol,
            ts=self.clock.datetime(us),
            price=price,
            window=window,
            previous_high=prev,
            previous_high_ts=self.clock.datetime(prev_us),
            change_pct=(price / prev - 1.0) * 100.0,
        )

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
        keep_from = self.max_day - (WINDOW_DAYS - 1) - lateness_days(self.config.lateness_us)
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

    # -- serialisation ----------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "v": 2,
            "latest_us": self.latest_us,
            "ath": self.ath,
            "ath_us": self.ath_us,
            "days": [[d, e[0], e[1]] for d, e in self.days.items()],
            "deque": list(self._deque),
            "max_day": self.max_day,
            "debounce": {w: [[d, p] for d, p in m.items()] for w, m in self.debounce.items()},
            "pending": None if self.pending is None else [[d, h] for d, h in self.pending.items()],
            "first_day": self.first_day,
            "bar_days": [self.bar_days[0], format(self.bar_days[1], "x")],
            "overlap": self.overlap,
        }

    @classmethod
    def from_state(
        cls, symbol: str, config: RecordHighConfig, clock: ZoneClock, state: dict[str, Any]
    ) -> SymbolTracker:
        tracker = cls(symbol, config, clock)
        tracker.latest_us = state["latest_us"]
        tracker.ath = float(state["ath"])
        tracker.ath_us = int(state["ath_us"])
        tracker.days = {int(d): [float(p), int(u)] for d, p, u in state["days"]}
        tracker._deque = deque(int(d) for d in state["deque"])
        tracker.max_day = int(state["max_day"])
        tracker._today = tracker.days.get(tracker.max_day, [0.0, 0])
        tracker.debounce = {w: _debounce_memory(m) for w, m in state["debounce"].items()}
        pending = state.get("pending")
        tracker.pending = None if pending is None else {int(d): float(h) for d, h in pending}
        first_day = state.get("first_day")
        if first_day is None and tracker.latest_us is not None:
            first_day = min(tracker.days, default=None)  # a state from before history
        tracker.first_day = first_day
        lo, bits = state.get("bar_days", [0, "0"])
        tracker.bar_days = (int(lo), int(bits, 16))
        tracker.overlap = int(state.get("overlap", 0))
        return tracker


def _debounce_memory(saved: list[Any]) -> dict[int, float]:
    """Per-day debounce memory; a version-1 state held one [day, price] pair per window."""
    if len(saved) == 2 and not isinstance(saved[0], list):
        return {int(saved[0]): float(saved[1])}
    return {int(d): float(p) for d, p in saved}
