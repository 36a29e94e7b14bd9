"""The demo's history: SYNTHETIC daily bars for the ~400 days before the ticks.

They come from a seeded generator of their own, so adding or changing them leaves the
ticks byte-identical.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

from deploy.demo.walks import HK, START, Instrument, closes, decimals

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
    # the main-board stock that seals limit-down in February: it peaked in September 2025
    "601127.SH": {
        HISTORY_START: 80.0,
        date(2024, 12, 31): 95.0,
        date(2025, 9, 10): 168.0,
        date(2025, 11, 28): 132.0,
    },
}
# A new listing's offer price, as the bar of the trading day before its listing date: it
# is the previous close of its first day (how A-share data gives it), so the first day's
# move is measured from it. Dated before the listing date: never one of its no-limit days.
OFFER_PRICES: dict[str, tuple[date, float]] = {"688795.SH": (date(2026, 1, 16), 30.0)}
HISTORY_VOL = {
    "000688.SH": 0.012,
    "HSTECH.HK": 0.014,
    "HSI.HK": 0.01,
    "600519.SH": 0.005,
    "CNYHKD": 0.0015,
}


def history_bars(rng: random.Random) -> list[tuple[str, date, float, float, float, float]]:
    """(symbol, date, open, high, low, close) per weekday before START, and the offer
    prices of new listings, in date order."""
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
            nd = decimals(symbol)
            o, h, lo, c = (round(x, nd) for x in (open_, high, low, close))
            out.append((symbol, day, o, max(h, o, c), min(lo, o, c), c))
            prev = close
    for symbol, (day, offer) in OFFER_PRICES.items():
        out.append((symbol, day, offer, offer, offer, offer))
    out.sort(key=lambda bar: (bar[1], bar[0]))
    return out
