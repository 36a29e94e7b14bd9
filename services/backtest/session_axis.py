"""The charts' time axis: exchange-local time with closed sessions collapsed to gaps."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import date, tzinfo

from matplotlib.axes import Axes

from services.detection.timeline import from_us

# Consecutive points further apart than this are in different sessions.
GAP_S = 30 * 60
# The width a closed period takes on the axis, in seconds of trading time.
GAP_WIDTH_S = 45 * 60


class SessionAxis:
    """Exchange-local time with closed periods collapsed to a fixed gap."""

    def __init__(self, instants_us: Iterable[int], zone: tzinfo) -> None:
        self.zone = zone
        self._us = sorted(set(instants_us))
        self._x: list[float] = []
        # the instants that start a new session (a gap precedes them)
        self._starts: list[int] = []
        x, prev = 0.0, None
        for us in self._us:
            if prev is not None:
                step = (us - prev) / 1e6
                if step > GAP_S:
                    x += GAP_WIDTH_S
                    self._starts.append(us)
                else:
                    x += step
            self._x.append(x)
            prev = us

    def x(self, us: int) -> float:
        """Position of an instant; instants between two points are placed proportionally."""
        points, xs = self._us, self._x
        i = bisect.bisect_left(points, us)
        if i < len(points) and points[i] == us:
            return xs[i]
        if i == 0:
            return xs[0] if xs else 0.0
        if i == len(points):
            return xs[-1]
        frac = (us - points[i - 1]) / (points[i] - points[i - 1])
        return xs[i - 1] + frac * (xs[i] - xs[i - 1])

    def session(self, us: int) -> int:
        return bisect.bisect_right(self._starts, us)

    def line(
        self, instants: Sequence[int], values: Sequence[float]
    ) -> tuple[list[float], list[float]]:
        """x and y of a line that breaks (NaN) wherever a session ends."""
        xs: list[float] = []
        ys: list[float] = []
        last_session = None
        for us, value in zip(instants, values, strict=True):
            session = self.session(us)
            if last_session is not None and session != last_session:
                xs.append(float("nan"))
                ys.append(float("nan"))
            xs.append(self.x(us))
            ys.append(value)
            last_session = session
        return xs, ys

    def decorate(self, ax: Axes, max_labels: int = 10) -> None:
        """Date labels at the first point of each local date, thinned to `max_labels`."""
        firsts: list[tuple[date, float]] = []
        seen: set[date] = set()
        for us, x in zip(self._us, self._x, strict=True):
            day = from_us(us, self.zone).date()
            if day not in seen:
                seen.add(day)
                firsts.append((day, x))
        # Thinned by distance on the axis, not by count: collapsed days (history bars,
        # a run of holidays) are narrow and would crowd their labels together.
        span = (self._x[-1] - self._x[0]) if self._x else 0.0
        shown: list[tuple[date, float]] = []
        for day, x in firsts:
            if not shown or x - shown[-1][1] >= span / max_labels:
                shown.append((day, x))
        ax.set_xticks([x for _, x in shown])
        ax.set_xticklabels([d.strftime("%d %b\n%Y") for d, _ in shown], fontsize=8)
        ax.set_xticks([x for _, x in firsts], minor=True)
        ax.set_xlabel(f"{self.zone} local time (closed sessions collapsed to gaps)", fontsize=8)
        if self._x:
            pad = GAP_WIDTH_S
            ax.set_xlim(self._x[0] - pad, self._x[-1] + pad)
