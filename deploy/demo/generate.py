"""Generate the SYNTHETIC demo data set: the January-February 2026 story, fixed seed.

Every price here is made up by a seeded random walk bent through a few anchor points
(listing day, record, year-to-date moves); nothing is market data. Usage:

    python deploy/demo/generate.py deploy/demo/ticks.csv [--jsonl deploy/demo/ticks.jsonl]
        [--bars deploy/demo/bars.csv]

The bars (daily history for the ~400 days before the ticks) come from their own seeded
generator, so adding or changing them leaves the ticks byte-identical.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

SEED = 20260213
# The dual listing (0981.HK, CNYHKD) draws from its own stream so the original eight
# series stay what they were before it was added.
AH_SEED = SEED + 2
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
# The A/H premium of SMIC (688981.SH over 0981.HK, in %) at a few dates: the H share's
# closes are drawn so the premium swings across the demo rule's 30% threshold (and back
# under its 24% close level) a few times. Made up, like every price here.
AH_PREMIUM_ANCHORS = {
    date(2025, 12, 1): 22.0,
    date(2025, 12, 11): 34.0,
    date(2025, 12, 23): 19.0,
    date(2026, 1, 9): 35.0,
    date(2026, 1, 21): 20.0,
    date(2026, 2, 4): 36.0,
    date(2026, 2, 13): 32.0,
}


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


def zhipu_day_13(times: list[datetime], prev_close: float, rng: random.Random) -> list[float]:
    """13 February: a 23.4% run from the previous close to the record HK$496.00 at 15:10."""
    peak_at = next(i for i, t in enumerate(times) if t.time() >= time(15, 10))
    rise = intraday(prev_close * 1.01, 488.0, peak_at, 0.004, rng)
    # Kept under 496/1.01 so the record itself clears the 1% same-day debounce.
    prices = [min(p, 490.0) for p in rise] + [496.00]
    fade = intraday(494.0, 489.6, len(times) - peak_at - 1, 0.002, rng)
    return prices + [min(p, 495.5) for p in fade]


def build(rng: random.Random) -> list[tuple[datetime, Instrument, float]]:
    days = trading_days()
    y25 = date(2025, 12, 31)
    insts = [
        Instrument(
            "2513.HK",
            "trade",
            HK,
            2,
            {date(2026, 1, 8): 118.0, date(2026, 2, 12): 401.94},
            0.035,
            listed=date(2026, 1, 8),
        ),
        Instrument(
            "000688.SH",
            "index",
            SH,
            2,
            {START: 1012.0, y25: 1000.0, date(2026, 1, 30): 1042.0, date(2026, 2, 13): 1091.0},
            0.006,
        ),
        Instrument(
            "HSTECH.HK",
            "index",
            HK,
            2,
            {START: 5580.0, y25: 5600.0, date(2026, 1, 30): 5535.0, date(2026, 2, 13): 5430.0},
            0.006,
        ),
        Instrument(
            "HSI.HK",
            "index",
            HK,
            2,
            {START: 25800.0, y25: 25600.0, date(2026, 2, 13): 26400.0},
            0.005,
        ),
        Instrument(
            "0700.HK", "trade", HK, 3, {START: 612.0, y25: 598.0, date(2026, 2, 13): 640.0}, 0.011
        ),
        Instrument(
            "9988.HK", "trade", HK, 3, {START: 152.0, y25: 158.0, date(2026, 2, 13): 149.0}, 0.014
        ),
        Instrument(
            "600519.SH",
            "trade",
            SH,
            3,
            {START: 1460.0, y25: 1420.0, date(2026, 2, 13): 1475.0},
            0.008,
        ),
        Instrument(
            "688981.SH", "trade", SH, 3, {START: 112.0, y25: 118.0, date(2026, 2, 13): 131.0}, 0.02
        ),
    ]
    rows: list[tuple[datetime, Instrument, float]] = []
    dailies: dict[str, dict[date, float]] = {}
    for inst in insts:
        daily = closes(inst, days, rng)
        dailies[inst.symbol] = daily
        prev = None
        for day in days:
            if day not in daily and not (inst.symbol == "2513.HK" and day == END):
                continue
            times = minutes(inst, day)
            if inst.symbol == "2513.HK" and day == END:
                prices = zhipu_day_13(times, prev or 401.94, rng)
            else:
                open_ = (prev or daily[day]) * math.exp(rng.gauss(0, inst.vol / 3))
                prices = intraday(open_, daily[day], len(times), inst.vol / 8, rng)
            rows.extend((t, inst, p) for t, p in zip(times, prices, strict=True))
            prev = prices[-1]
    rows.extend(dual_listing(days, dailies["688981.SH"], random.Random(AH_SEED)))
    rows.sort(key=lambda r: (r[0], r[1].symbol))
    return rows


def interpolate(anchors: dict[date, float], day: date) -> float:
    """Straight line between the anchors around `day` (by calendar days)."""
    points = sorted(anchors.items())
    for (d0, v0), (d1, v1) in itertools.pairwise(points):
        if d0 <= day <= d1:
            return v0 + (v1 - v0) * (day - d0).days / (d1 - d0).days
    return points[0][1] if day < points[0][0] else points[-1][1]


def dual_listing(
    days: list[date], a_closes: dict[date, float], rng: random.Random
) -> list[tuple[datetime, Instrument, float]]:
    """0981.HK (SMIC's H share) and CNYHKD (HKD per CNY), both SYNTHETIC.

    CNYHKD walks between 1.08 and 1.10; the H share's close is the A share's close in HKD
    divided by (1 + premium), the premium following AH_PREMIUM_ANCHORS with some noise.
    """
    fx = Instrument(
        "CNYHKD",
        "index",
        UTC,
        5,
        {START: 1.092, date(2025, 12, 31): 1.085, date(2026, 1, 30): 1.097, END: 1.089},
        0.0015,
    )
    h = Instrument("0981.HK", "trade", HK, 3, {}, 0.012)
    fx_daily = closes(fx, days, rng)
    h_daily = {
        d: a_closes[d]
        * fx_daily[d]
        / (1 + (interpolate(AH_PREMIUM_ANCHORS, d) + rng.gauss(0, 1.0)) / 100)
        for d in days
    }
    rows: list[tuple[datetime, Instrument, float]] = []
    for inst, daily in ((fx, fx_daily), (h, h_daily)):
        prev = None
        for day in days:
            times = minutes(inst, day)
            open_ = (prev or daily[day]) * math.exp(rng.gauss(0, inst.vol / 3))
            prices = intraday(open_, daily[day], len(times), inst.vol / 8, rng)
            rows.extend((t, inst, p) for t, p in zip(times, prices, strict=True))
            prev = prices[-1]
    return rows


def digits(inst: Instrument) -> int:
    """Decimals of a quote: an exchange rate needs four, prices two."""
    return 4 if inst.zone is UTC else 2


# History: daily bars from HISTORY_START to the last trading day before START, for every
# instrument except 2513.HK (it lists on 8 January 2026: no past to seed). The anchors
# make 2025 a strong year that peaked in October, so the ticks' first days are no records,
# and put the STAR 50 and HSTECH at about +30% for 2025 alike (no divergence in December).
# 600519.SH peaked in November 2024, more than 52 weeks before February 2026: its highs
# there are 52-week highs, not all-time ones.
HISTORY_START = date(2024, 10, 28)
HISTORY_ANCHORS: dict[str, dict[date, float]] = {
    "000688.SH": {
        HISTORY_START: 820.0,
        date(2024, 12, 31): 780.0,
        date(2025, 6, 30): 900.0,
        date(2025, 10, 15): 1080.0,
        date(2025, 11, 28): 1010.0,
    },
    "HSTECH.HK": {
        HISTORY_START: 4500.0,
        date(2024, 12, 31): 4300.0,
        date(2025, 3, 14): 5900.0,
        date(2025, 10, 3): 6400.0,
        date(2025, 11, 28): 5600.0,
    },
    "HSI.HK": {
        HISTORY_START: 20500.0,
        date(2024, 12, 31): 20000.0,
        date(2025, 10, 2): 27000.0,
        date(2025, 11, 28): 25850.0,
    },
    "0700.HK": {
        HISTORY_START: 410.0,
        date(2024, 12, 31): 420.0,
        date(2025, 10, 3): 665.0,
        date(2025, 11, 28): 615.0,
    },
    "9988.HK": {
        HISTORY_START: 95.0,
        date(2024, 12, 31): 83.0,
        date(2025, 10, 2): 185.0,
        date(2025, 11, 28): 153.0,
    },
    "600519.SH": {
        HISTORY_START: 1650.0,
        date(2024, 11, 12): 1720.0,
        date(2024, 12, 10): 1450.0,
        date(2024, 12, 31): 1420.0,
        date(2025, 2, 14): 1400.0,
        date(2025, 5, 15): 1410.0,
        date(2025, 9, 1): 1360.0,
        date(2025, 10, 28): 1400.0,
        date(2025, 11, 28): 1462.0,
    },
    "688981.SH": {
        HISTORY_START: 95.0,
        date(2024, 12, 31): 98.0,
        date(2025, 10, 9): 150.0,
        date(2025, 11, 28): 112.5,
    },
    # the dual listing: the H share peaked with its A share in October 2025, and the
    # synthetic CNYHKD rate was above 1.10 in spring 2025, so neither starts with records
    "0981.HK": {
        HISTORY_START: 80.0,
        date(2024, 12, 31): 83.0,
        date(2025, 10, 9): 132.0,
        date(2025, 11, 28): 96.0,
    },
    "CNYHKD": {
        HISTORY_START: 1.075,
        date(2025, 4, 30): 1.108,
        date(2025, 11, 28): 1.092,
    },
}
HISTORY_VOL = {
    "000688.SH": 0.012,
    "HSTECH.HK": 0.014,
    "HSI.HK": 0.01,
    "600519.SH": 0.005,
    "CNYHKD": 0.0015,
}


def history_bars(rng: random.Random) -> list[tuple[str, date, float, float, float, float]]:
    """(symbol, date, open, high, low, close) per weekday before START, in date order."""
    days, d = [], HISTORY_START
    while d < START:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    out = []
    for symbol, anchors in HISTORY_ANCHORS.items():
        vol = HISTORY_VOL.get(symbol, 0.02)
        inst = Instrument(symbol, "trade", HK, 1, anchors, vol, listed=HISTORY_START)
        daily = closes(inst, days, rng)
        prev = None
        for day in days:
            close = daily[day]
            open_ = (prev or close) * math.exp(rng.gauss(0, vol / 3))
            high = max(open_, close) * (1 + abs(rng.gauss(0, vol / 2)))
            low = min(open_, close) * (1 - abs(rng.gauss(0, vol / 2)))
            nd = 4 if symbol == "CNYHKD" else 2  # a rate's four decimals, as in the ticks
            o, h, lo, c = (round(x, nd) for x in (open_, high, low, close))
            out.append((symbol, day, o, max(h, o, c), min(lo, o, c), c))
            prev = close
    out.sort(key=lambda bar: (bar[1], bar[0]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--jsonl", type=Path)
    parser.add_argument("--bars", type=Path, help="also write the daily history (CSV)")
    args = parser.parse_args()
    if args.bars:
        with args.bars.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write("symbol,date,open,high,low,close\n")
            for symbol, day, o, h, lo, c in history_bars(random.Random(SEED + 2)):
                nd = 4 if symbol == "CNYHKD" else 2
                fh.write(
                    f"{symbol},{day.isoformat()},{o:.{nd}f},{h:.{nd}f},{lo:.{nd}f},{c:.{nd}f}\n"
                )
    rows = build(random.Random(SEED))
    rng = random.Random(SEED + 1)
    volumes = [rng.randint(1, 50) * 100 for _ in rows]
    with args.csv.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("symbol,ts,price,volume,kind\n")
        for (t, inst, p), v in zip(rows, volumes, strict=True):
            vol = 0 if inst.kind == "index" else v
            fh.write(f"{inst.symbol},{t.isoformat()},{p:.{digits(inst)}f},{vol},{inst.kind}\n")
    if args.jsonl:
        with args.jsonl.open("w", encoding="utf-8", newline="\n") as fh:
            for (t, inst, p), v in zip(rows, volumes, strict=True):
                vol = 0 if inst.kind == "index" else v
                record = {
                    "symbol": inst.symbol,
                    "ts": t.isoformat(),
                    "price": round(p, digits(inst)),
                    "volume": vol,
                    "kind": inst.kind,
                }
                fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
