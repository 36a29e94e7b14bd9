"""The demo's calendar, instruments and price walks (all SYNTHETIC): the building blocks
that deploy/demo/generate.py bends into its story and deploy/demo/history.py into bars."""

from __future__ import annotations

import itertools
import math
import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

HK = ZoneInfo("Asia/Hong_Kong")
SH = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")
START = date(2025, 12, 1)
END = date(2026, 2, 13)
HOLIDAYS = {date(2025, 12, 25), date(2025, 12, 26), date(2026, 1, 1)}
HK_SESSIONS = ((time(9, 30), time(12, 0)), (time(13, 0), time(16, 0)))
SH_SESSIONS = ((time(9, 30), time(11, 30)), (time(13, 0), time(15, 0)))
# CNYHKD is quoted round the clock on weekdays; the demo keeps 01:00-08:30 UTC (09:00-16:30
# in Hong Kong), which covers both exchanges' sessions, to stay small.
FX_SESSIONS = ((time(1, 0), time(8, 30)),)
# The one quote with four decimals (an exchange rate); prices have two.
FX_SYMBOL = "CNYHKD"


class Instrument:
    def __init__(
        self,
        symbol: str,
        kind: str,
        zone: ZoneInfo,
        step_min: int,
        anchors: dict[date, float],
        vol: float,
        listed: date = START,
    ) -> None:
        self.symbol, self.kind, self.zone, self.step_min = symbol, kind, zone, step_min
        self.anchors, self.vol, self.listed = anchors, vol, listed

    @property
    def sessions(self) -> tuple[tuple[time, time], ...]:
        if self.zone is UTC:
            return FX_SESSIONS
        return HK_SESSIONS if self.zone is HK else SH_SESSIONS


def trading_days() -> list[date]:
    days, d = [], START
    while d <= END:
        if d.weekday() < 5 and d not in HOLIDAYS:
            days.append(d)
        d += timedelta(days=1)
    return days


def closes(inst: Instrument, days: list[date], rng: random.Random) -> dict[date, float]:
    """Daily closes: a random walk in log space, bent to pass through every anchor."""
    live = [d for d in days if d >= inst.listed]
    anchors = sorted(inst.anchors.items())
    out: dict[date, float] = {}
    for (d0, p0), (d1, p1) in itertools.pairwise(anchors):
        span = [d for d in live if d0 <= d <= d1]
        n = len(span) - 1
        walk = [0.0]
        for _ in range(n):
            walk.append(walk[-1] + rng.gauss(0, inst.vol))
        for i, d in enumerate(span):
            frac = i / n if n else 1.0
            # Brownian bridge: the walk minus its straight line, plus the anchors' line.
            bridge = walk[i] - frac * walk[-1]
            out[d] = math.exp(math.log(p0) + frac * (math.log(p1) - math.log(p0)) + bridge)
    return out


def minutes(inst: Instrument, day: date) -> list[datetime]:
    out = []
    for start, end in inst.sessions:
        t = datetime.combine(day, start, inst.zone)
        stop = datetime.combine(day, end, inst.zone)
        while t <= stop:
            out.append(t)
            t += timedelta(minutes=inst.step_min)
    return out


def intraday(open_: float, close: float, n: int, vol: float, rng: random.Random) -> list[float]:
    walk = [0.0]
    for _ in range(n - 1):
        walk.append(walk[-1] + rng.gauss(0, vol))
    return [
        math.exp(
            math.log(open_)
            + (i / (n - 1)) * (math.log(close) - math.log(open_))
            + walk[i]
            - (i / (n - 1)) * walk[-1]
        )
        for i in range(n)
    ]


def interpolate(anchors: dict[date, float], day: date) -> float:
    """Straight line between the anchors around `day` (by calendar days)."""
    points = sorted(anchors.items())
    for (d0, v0), (d1, v1) in itertools.pairwise(points):
        if d0 <= day <= d1:
            return v0 + (v1 - v0) * (day - d0).days / (d1 - d0).days
    return points[0][1] if day < points[0][0] else points[-1][1]


def decimals(symbol: str) -> int:
    """Decimals of a quote, in the ticks and the bars alike."""
    return 4 if symbol == FX_SYMBOL else 2
