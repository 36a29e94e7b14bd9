"""How fast a file is replayed: as fast as possible, at a fixed rate, or at event-time speed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.detection.timeline import US_PER_S

# Sleeping for less than this costs more in wake-up jitter than it keeps the pace.
MIN_SLEEP_S = 0.001


def min_sleep_for(bundle_window_ms: float | None) -> float:
    """The pacer's shortest sleep: a quarter of the bundle window, at least MIN_SLEEP_S.
    Ticks in one window leave in one record, so pacing them finer only wakes the
    process: at 5,000 ticks/s, 1 ms slots are 1,000 wake-ups a second, 5 ms slots 200,
    and the ingestor's CPU fell by about 2 points of a core (docs/bench.md)."""
    if bundle_window_ms is None:
        return MIN_SLEEP_S
    return max(MIN_SLEEP_S, bundle_window_ms / 4000)


@dataclass
class Pacer:
    """Sleeps before each tick so it leaves no earlier than its slot.

    Slots are measured from the first tick, not from the previous one, so the small
    overshoot of each sleep does not add up over a long replay.
    """

    rate: float | None = None
    speed: float | None = None
    # A tick due sooner than this leaves now, up to this much early (`min_sleep_for`).
    min_sleep_s: float = MIN_SLEEP_S
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _start: float | None = field(default=None, init=False)
    _first_ts_us: int | None = field(default=None, init=False)
    _count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0")
        if self.speed is not None and self.speed <= 0:
            raise ValueError("speed must be > 0")
        if self.rate is not None and self.speed is not None:
            raise ValueError("give a rate or a speed, not both")

    @property
    def paced(self) -> bool:
        return self.rate is not None or self.speed is not None

    def wait(self, ts_us: int) -> None:
        if not self.paced:
            return
        now = self.clock()
        if self._start is None:
            self._start, self._first_ts_us = now, ts_us
        assert self._first_ts_us is not None
        if self.rate is not None:
            due = self._start + self._count / self.rate
        else:
            assert self.speed is not None
            # A tick earlier than the first (allowed lateness) is simply due now.
            due = self._start + max(ts_us - self._first_ts_us, 0) / US_PER_S / self.speed
        self._count += 1
        ahead = due - now
        if ahead >= self.min_sleep_s:
            self.sleep(ahead)
