"""A naive reference of the day moves, written from docs/signals.md alone.

It keeps every accepted tick and bar and recomputes each rule from them at every tick:
slow, and independent of `services.detection.day_moves` (no shared code but the Tick
values). The property tests hold the engine to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

ZONES = {".HK": "Asia/Hong_Kong", ".SH": "Asia/Shanghai", ".SZ": "Asia/Shanghai"}
BOARDS = [
    (re.compile(r"60[0-9]{4}\.SH"), "main"),
    (re.compile(r"68[89][0-9]{3}\.SH"), "star"),
    (re.compile(r"00[0-3][0-9]{3}\.SZ"), "main"),
    (re.compile(r"30[01][0-9]{3}\.SZ"), "chinext"),
    (re.compile(r"(4[0-9]{5}|8[0-9]{5}|92[0-9]{4})\.BJ"), "bse"),
]


@dataclass
class Config:
    levels: list[float] | None = None
    limits: dict[str, Any] | None = None  # main_pct.. st, st_pct, no_limit_days, listings
    days: int = 5
    multiples: list[float] | None = None
    lateness_s: float = 5.0


@dataclass
class NTick:
    symbol: str
    ts: datetime
    price: float
    volume: int = 0
    kind: str = "trade"


@dataclass
class NBar:
    symbol: str
    day: date
    close: float
    volume: int | None = None


@dataclass
class _Sym:
    ticks: list[tuple[int, datetime, date, float, int, bool]] = field(default_factory=list)
    bars: dict[date, NBar] = field(default_factory=dict)  # first bar per date, in arrival
    prev: dict[date, tuple[float, date] | None] = field(default_factory=dict)
    reached: dict[tuple[date, str], set[float]] = field(default_factory=dict)
    sealed: dict[tuple[date, str], bool] = field(default_factory=dict)
    seals: dict[tuple[date, str], int] = field(default_factory=dict)
    multiples: dict[date, set[float]] = field(default_factory=dict)


def zone_of(symbol: str) -> ZoneInfo:
    for suffix, zone in sorted(ZONES.items(), key=lambda kv: -len(kv[0])):
        if symbol.endswith(suffix):
            return ZoneInfo(zone)
    return ZoneInfo("UTC")


def board(symbol: str) -> str | None:
    for pattern, name in BOARDS:
        if pattern.fullmatch(symbol):
            return name
    return None


def limit(c: float, pct: float, up: bool) -> float:
    exact = Fraction(repr(c)) * (1 + (1 if up else -1) * Fraction(repr(pct)) / 100)
    cents = exact * 100
    floor = cents.numerator // cents.denominator
    rounded = floor + 1 if cents - floor >= Fraction(1, 2) else floor  # half up, for >= 0
    return float(Fraction(rounded, 100))


class NaiveDayMoves:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.syms: dict[str, _Sym] = {}
        self.arrival = 0

    def bar(self, bar: NBar) -> None:
        s = self.syms.setdefault(bar.symbol, _Sym())
        if bar.day in s.bars:
            return  # a second bar for the date: ignored
        s.bars[bar.day] = bar

    def _first_day(self, s: _Sym) -> date | None:
        return s.ticks[0][2] if s.ticks else None

    def _valid_bars(self, s: _Sym) -> dict[date, NBar]:
        first = self._first_day(s)
        return {d: b for d, b in s.bars.items() if first is None or d < first}

    def tick(self, t: NTick) -> list[dict[str, Any]] | str:
        """The day-move signals of `t` as dicts, or "late"."""
        s = self.syms.setdefault(t.symbol, _Sym())
        ts_list = [x[1] for x in s.ticks]
        if ts_list and t.ts < max(ts_list) - timedelta(seconds=self.config.lateness_s):
            return "late"
        self.arrival += 1
        day = t.ts.astimezone(zone_of(t.symbol)).date()
        current_before = max((x[2] for x in s.ticks), default=None)
        is_current = current_before is None or day >= current_before
        if not s.ticks:
            # the first tick: only bars before its date count from now on
            s.ticks.append((self.arrival, t.ts, day, t.price, t.volume, True))
        else:
            s.ticks.append((self.arrival, t.ts, day, t.price, t.volume, is_current))
        if not is_current:
            return []
        if day not in s.prev:
            s.prev[day] = self._previous_close(s, day)
        prev = s.prev[day]
        if prev is None:
            return []
        c, c_day = prev
        out: list[dict[str, Any]] = []
        out += self._price_move(s, t, day, c, c_day)
        out += self._limit(s, t, day, c)
        out += self._volume(s, t, day)
        return out

    def _previous_close(self, s: _Sym, day: date) -> tuple[float, date] | None:
        earlier = [x for x in s.ticks if x[5] and x[2] < day]
        if earlier:
            d = max(x[2] for x in earlier)
            closing = max((x for x in earlier if x[2] == d), key=lambda x: (x[1], x[0]))
            return closing[3], d
        bars = [b for d, b in self._valid_bars(s).items() if d < day]
        if bars:
            last = max(bars, key=lambda b: b.day)
            return last.close, last.day
        return None

    def _price_move(
        self, s: _Sym, t: NTick, day: date, c: float, c_day: date
    ) -> list[dict[str, Any]]:
        levels = self.config.levels
        if levels is None:
            return []
        change = (t.price / c - 1.0) * 100.0
        out = []
        for direction in ("up", "down"):
            reached = s.reached.setdefault((day, direction), set())
            hit = [
                x
                for x in levels
                if (change >= x if direction == "up" else change <= -x) and x not in reached
            ]
            if hit:
                top = max(hit)
                reached.update(x for x in levels if x <= top)
                out.append(
                    {
                        "kind": "price_move",
                        "symbol": t.symbol,
                        "ts": t.ts,
                        "price": t.price,
                        "direction": direction,
                        "level_pct": top,
                        "change_pct": change,
                        "previous_close": c,
                        "previous_close_date": c_day.isoformat(),
                    }
                )
        return out

    def _limit_pct(self, s: _Sym, symbol: str, day: date) -> float | None:
        lim = self.config.limits
        if lim is None:
            return None
        b = board(symbol)
        if b is None:
            return None
        pct: float = lim["st_pct"] if b == "main" and symbol in lim["st"] else lim[b + "_pct"]
        listed = lim["listings"].get(symbol)
        if listed is not None:
            dates = {d for d in self._valid_bars(s) if listed <= d <= day}
            dates |= {x[2] for x in s.ticks if listed <= x[2] <= day}
            if len(dates) <= lim["no_limit_days"]:
                return None
        return pct

    def _limit(self, s: _Sym, t: NTick, day: date, c: float) -> list[dict[str, Any]]:
        if t.kind != "trade":
            return []
        pct = self._limit_pct(s, t.symbol, day)
        if pct is None:
            return []
        up, down = limit(c, pct, True), limit(c, pct, False)
        at = {"up": t.price >= up, "down": t.price <= down}
        price = {"up": up, "down": down}
        opened, sealed = [], []
        for direction in ("up", "down"):
            key = (day, direction)
            was = s.sealed.get(key, False)
            if was and not at[direction]:
                s.sealed[key] = False
                opened.append((direction, "opened", s.seals.get(key, 0)))
            elif not was and at[direction]:
                s.sealed[key] = True
                s.seals[key] = s.seals.get(key, 0) + 1
                sealed.append((direction, "sealed", s.seals[key]))
        return [
            {
                "kind": "limit_hit",
                "symbol": t.symbol,
                "ts": t.ts,
                "price": t.price,
                "direction": direction,
                "phase": phase,
                "limit_price": price[direction],
                "limit_pct": pct,
                "previous_close": c,
                "seals": seals,
            }
            for direction, phase, seals in opened + sealed
        ]

    def _daily_volume(self, s: _Sym, d: date) -> int | None:
        first = self._first_day(s)
        if first is not None and d >= first:
            current = [x for x in s.ticks if x[2] == d and x[5]]
            return sum(x[4] for x in current) if current else None
        bar = self._valid_bars(s).get(d)
        return None if bar is None else bar.volume

    def _volume(self, s: _Sym, t: NTick, day: date) -> list[dict[str, Any]]:
        multiples = self.config.multiples
        if multiples is None:
            return []
        dates = sorted({x[2] for x in s.ticks} | set(self._valid_bars(s)))
        with_volume = [v for d in dates if d < day and (v := self._daily_volume(s, d)) is not None]
        days = self.config.days
        if len(with_volume) < days:
            return []
        mean = sum(with_volume[-days:]) / days
        if mean == 0:
            return []
        volume = sum(x[4] for x in s.ticks if x[2] == day and x[5])
        reached = s.multiples.setdefault(day, set())
        hit = [m for m in multiples if volume >= m * mean and m not in reached]
        if not hit:
            return []
        top = max(hit)
        reached.update(m for m in multiples if m <= top)
        return [
            {
                "kind": "volume_spike",
                "symbol": t.symbol,
                "ts": t.ts,
                "price": t.price,
                "volume": volume,
                "average_volume": mean,
                "multiple": top,
                "days": days,
            }
        ]
