"""Per-symbol state: the lateness guard and record-high detection (all-time and 52-week).

`SymbolTracker` judges each tick; its bases keep the highs (`record_high_days.py`: the
all-time high and the daily maxima behind the 52-week window) and merge daily bars as
history (`record_high_history.py`). Each class writes and reads its own share of the
tracker's state; the version is the tracker's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.signals import RecordHigh
from services.detection.record_high_history import BarHistory, BarOutcome
from services.detection.state import check_version
from services.detection.timeline import ZoneClock, lateness_days

__all__ = ["BarOutcome", "Late", "RecordHighConfig", "SymbolTracker"]

# 2 keeps debounce memory per day; 1 (one [day, price] per window) is still read.
STATE_VERSION = 2
STATE_VERSIONS = (1, 2)


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


class SymbolTracker(BarHistory):
    """Everything the contract keeps per symbol. `update` is the only mutator."""

    __slots__ = (
        "_all_time",
        "_day",
        "_hi",
        "_lo",
        "_step",
        "_weeks52",
        "clock",
        "config",
        "debounce",
        "latest_us",
        "symbol",
    )

    def __init__(self, symbol: str, config: RecordHighConfig, clock: ZoneClock) -> None:
        super().__init__(config.lateness_us)
        self.symbol = symbol
        self.config = config
        self.clock = clock
        self._step = 1.0 + config.step_pct / 100.0
        self._all_time = config.all_time
        self._weeks52 = config.weeks52
        # The local day of the last tick and the us span it covers: most ticks fall in it.
        self._day, self._lo, self._hi = 0, 0, 0
        self.latest_us: int | None = None
        # window -> local day -> price of the last signal emitted on that day. Per day, so
        # a late tick of yesterday neither uses nor resets today's memory.
        self.debounce: dict[str, dict[int, float]] = {}

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

    # -- serialisation ----------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The tracker as JSON-friendly data, versioned; `from_state` reads it back."""
        return {
            "v": STATE_VERSION,
            "latest_us": self.latest_us,
            **self.highs_state(),
            "debounce": {w: [[d, p] for d, p in m.items()] for w, m in self.debounce.items()},
            **self.history_state(),
        }

    @classmethod
    def from_state(
        cls, symbol: str, config: RecordHighConfig, clock: ZoneClock, state: dict[str, Any]
    ) -> SymbolTracker:
        """A tracker from `state` (StateVersionError for a version this code cannot read)."""
        check_version(state, "record-high symbol", STATE_VERSIONS)
        tracker = cls(symbol, config, clock)
        tracker.latest_us = state["latest_us"]
        tracker.load_highs(state)
        tracker.debounce = {w: _debounce_memory(m) for w, m in state["debounce"].items()}
        tracker.load_history(state)
        if tracker.first_day is None and tracker.latest_us is not None:
            tracker.first_day = min(tracker.days, default=None)  # a state from before history
        return tracker


def _debounce_memory(saved: list[Any]) -> dict[int, float]:
    """Per-day debounce memory; a version-1 state held one [day, price] pair per window."""
    if len(saved) == 2 and not isinstance(saved[0], list):
        return {int(saved[0]): float(saved[1])}
    return {int(d): float(p) for d, p in saved}
