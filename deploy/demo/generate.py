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
import json
import math
import random
import sys
from datetime import date, datetime, time
from pathlib import Path

# Run as a script: the repository root, so the demo's modules import as deploy.demo.*.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.demo.history import OFFER_PRICES, history_bars
from deploy.demo.walks import (
    END,
    FX_SYMBOL,
    HK,
    SH,
    START,
    UTC,
    Instrument,
    closes,
    decimals,
    interpolate,
    intraday,
    minutes,
    trading_days,
)
from services.detection.boards import limit_prices

SEED = 20260213
# The day-move story (a STAR newcomer, a main-board limit-down) draws from its own
# stream too, as do its volumes: the series before it stay what they were.
DAY_MOVES_SEED = SEED + 3
NEWCOMER = "688795.SH"  # a STAR Market debut, SYNTHETIC prices
NEWCOMER_LISTED = date(2026, 1, 19)
# Its first five days, as close-to-close factors after a first day from 100 to 125 (the
# offer price is 30.00): no limit applies while a listing is inside its no-limit days.
NEWCOMER_FIRST_DAYS = [1.12, 0.91, 1.26, 1.04]
NEWCOMER_SEAL_DAY = date(2026, 1, 26)  # day 6: the 20% limit applies
LIMIT_DOWN = "601127.SH"  # a main-board stock, SYNTHETIC prices
LIMIT_DOWN_DAY = date(2026, 2, 5)
ZHIPU_VOLUME_BOOST = 3  # 13 February trades three times its usual volume
# The dual listing (0981.HK, CNYHKD) draws from its own stream so the original eight
# series stay what they were before it was added.
AH_SEED = SEED + 2
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


def newcomer(
    days: list[date], rng: random.Random
) -> list[tuple[datetime, Instrument, float, float]]:
    """688795.SH: lists on 19 January 2026 at +233% over its offer price, swings freely for
    five days, then on day 6 seals its 20% limit-up at 10:30, breaks at 11:03 and
    re-seals at 11:24 until the close. (time, instrument, price, volume factor) rows."""
    inst = Instrument(NEWCOMER, "trade", SH, 3, {}, 0.03, listed=NEWCOMER_LISTED)
    live = [d for d in days if d >= NEWCOMER_LISTED]
    rows: list[tuple[datetime, Instrument, float, float]] = []
    close = 125.0
    prev = round(OFFER_PRICES[NEWCOMER][1], 2)
    for n, day in enumerate(live):
        times = minutes(inst, day)
        if n == 0:
            prices = intraday(100.0, close, len(times), 0.01, rng)
            factor = 8.0
        elif n <= len(NEWCOMER_FIRST_DAYS):
            close = prev * NEWCOMER_FIRST_DAYS[n - 1]
            prices = intraday(prev * math.exp(rng.gauss(0, 0.02)), close, len(times), 0.01, rng)
            factor = 4.0
        elif day == NEWCOMER_SEAL_DAY:
            prices = _sealed_day(prev, len(times), rng)
            factor = 3.0
        else:
            close = prev * math.exp(rng.gauss(0, inst.vol))
            prices = intraday(prev * math.exp(rng.gauss(0, 0.01)), close, len(times), 0.004, rng)
            factor = 1.0
        prices = [round(p, 2) for p in prices]
        rows.extend((t, inst, p, factor) for t, p in zip(times, prices, strict=True))
        prev = prices[-1]
    return rows


def _sealed_day(prev: float, n: int, rng: random.Random) -> list[float]:
    up, _ = limit_prices(prev, 20.0)
    rise = [min(p, up - 0.05) for p in intraday(prev * 1.05, up - 0.05, 20, 0.004, rng)]
    held = [up] * 11  # 10:30-11:00 sealed
    broken = [round(up * f, 2) for f in (0.985, 0.975, 0.97, 0.98, 0.99, 0.995, 0.998)]
    return rise + held + broken + [up] * (n - len(rise) - len(held) - len(broken))


def limit_down(
    days: list[date], rng: random.Random
) -> list[tuple[datetime, Instrument, float, float]]:
    """601127.SH: a main-board stock drifting lower that seals its 10% limit-down at 10:15
    on 5 February 2026 and stays sealed to the close."""
    anchors = {START: 128.0, date(2026, 1, 15): 140.0, date(2026, 2, 4): 131.0}
    anchors |= {LIMIT_DOWN_DAY: 117.9, END: 121.0}
    inst = Instrument(LIMIT_DOWN, "trade", SH, 3, anchors, 0.012)
    daily = closes(inst, days, rng)
    rows: list[tuple[datetime, Instrument, float, float]] = []
    prev: float | None = None
    for day in days:
        times = minutes(inst, day)
        if day == LIMIT_DOWN_DAY and prev is not None:
            _, down = limit_prices(prev, 10.0)
            fall = intraday(prev * 0.97, down + 0.05, 15, 0.003, rng)
            prices = [max(p, down + 0.05) for p in fall] + [down] * (len(times) - 15)
            factor = 3.0
        else:
            open_ = (prev or daily[day]) * math.exp(rng.gauss(0, inst.vol / 3))
            prices = intraday(open_, daily[day], len(times), inst.vol / 8, rng)
            factor = 1.0
        prices = [round(p, 2) for p in prices]
        rows.extend((t, inst, p, factor) for t, p in zip(times, prices, strict=True))
        prev = prices[-1]
    return rows


def dual_listing(
    days: list[date], a_closes: dict[date, float], rng: random.Random
) -> list[tuple[datetime, Instrument, float]]:
    """0981.HK (SMIC's H share) and CNYHKD (HKD per CNY), both SYNTHETIC.

    CNYHKD walks between 1.08 and 1.10; the H share's close is the A share's close in HKD
    divided by (1 + premium), the premium following AH_PREMIUM_ANCHORS with some noise.
    """
    fx = Instrument(
        FX_SYMBOL,
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
                nd = decimals(symbol)
                fh.write(
                    f"{symbol},{day.isoformat()},{o:.{nd}f},{h:.{nd}f},{lo:.{nd}f},{c:.{nd}f}\n"
                )
    rows = build(random.Random(SEED))
    rng = random.Random(SEED + 1)
    volumes = [rng.randint(1, 50) * 100 for _ in rows]
    for i, (t, inst, _) in enumerate(rows):
        if inst.symbol == "2513.HK" and t.date() == END:
            volumes[i] *= ZHIPU_VOLUME_BOOST
    story = random.Random(DAY_MOVES_SEED)
    days = trading_days()
    extra = newcomer(days, story) + limit_down(days, story)
    timed = [
        (inst.symbol, t, p, 0 if inst.kind == "index" else v, inst.kind)
        for (t, inst, p), v in zip(rows, volumes, strict=True)
    ] + [
        (inst.symbol, t, p, int(story.randint(1, 50) * 100 * factor), inst.kind)
        for t, inst, p, factor in extra
    ]
    # The same order as before the story's rows were added (time, then symbol).
    ticks = [
        (symbol, t.isoformat(), p, vol, kind)
        for symbol, t, p, vol, kind in sorted(timed, key=lambda r: (r[1], r[0]))
    ]
    with args.csv.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("symbol,ts,price,volume,kind\n")
        for symbol, ts, p, vol, kind in ticks:
            fh.write(f"{symbol},{ts},{p:.{decimals(symbol)}f},{vol},{kind}\n")
    if args.jsonl:
        with args.jsonl.open("w", encoding="utf-8", newline="\n") as fh:
            for symbol, ts, p, vol, kind in ticks:
                price = round(p, decimals(symbol))
                record = {"symbol": symbol, "ts": ts, "price": price, "volume": vol, "kind": kind}
                fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
