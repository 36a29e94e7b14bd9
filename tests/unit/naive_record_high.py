"""A naive record-high reference, written straight from docs/signals.md.

The reference keeps every accepted tick of every symbol in a plain list and rescans the
whole list on every tick: no deques, no daily maxima, no caches. It follows the contract
plus the project's documented choices where the contract is silent:

1. `previous_high_ts` is the smallest ts among the earlier accepted ticks (in that
   window) whose price equals `previous_high`.
2. Debounce is per (symbol, window, local date): the price of the last signal emitted in
   that window on that date. A late tick of an earlier date is judged against that
   date's memory and leaves the current date's alone.
3. Without "all_time" in `windows` an all-time high is checked as a 52w candidate; without
   "52w" only all-time highs are reported.
4. Lateness: `ts < max accepted ts - allowed_lateness_s` is late; exactly that much
   earlier is accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from schemas.signals import RecordHigh
from services.detection.record_high import Late
from tests.unit import naive_common

# Extra zones beyond the contract's defaults: one with DST, one with a 45-minute offset.
EXTRA_ZONES = {".NY": "America/New_York", ".KT": "Asia/Kathmandu"}
SUFFIX_ZONES = {
    ".HK": "Asia/Hong_Kong",
    ".SH": "Asia/Shanghai",
    ".SZ": "Asia/Shanghai",
    **EXTRA_ZONES,
}
# "u.hk" is UTC: suffixes match case-sensitively.
SYMBOLS = ["X.HK", "Y.SH", "Z", "W.NY", "V.KT", "u.hk"]


def zone_of(symbol: str) -> tzinfo:
    return naive_common.zone_of(symbol, SUFFIX_ZONES)


def local_date(symbol: str, ts: datetime) -> date:
    return naive_common.local_date(symbol, ts, SUFFIX_ZONES)


# -- the naive reference --------------------------------------------------------------


@dataclass
class RefLate:
    latest: datetime
    behind_s: float


@dataclass
class NaiveRecordHighs:
    windows: tuple[str, ...]
    step_pct: float
    lateness_s: float
    accepted: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    # (symbol, window, local date) -> price of the last signal emitted on that date
    last_emitted: dict[tuple[str, str, date], float] = field(default_factory=dict)

    def process(self, symbol: str, ts: datetime, price: float) -> RefLate | list[RecordHigh]:
        history = self.accepted.setdefault(symbol, [])
        if history:
            latest = max(t for t, _ in history)
            if ts < latest - timedelta(seconds=self.lateness_s):
                return RefLate(latest=latest, behind_s=(latest - ts).total_seconds())
        out = self._classify(symbol, ts, price, history)
        history.append((ts, price))
        return out

    def _classify(
        self, symbol: str, ts: datetime, price: float, history: list[tuple[datetime, float]]
    ) -> list[RecordHigh]:
        if not history:
            return []  # the first accepted tick sets the baseline
        day = local_date(symbol, ts)
        all_time_high = max(p for _, p in history)
        if price > all_time_high and "all_time" in self.windows:
            return self._emit(symbol, ts, price, "all_time", history, day)
        if price > all_time_high and "52w" not in self.windows:
            return []
        if "52w" not in self.windows:
            return []
        in_window = [
            (t, p) for t, p in history if day - timedelta(days=364) <= local_date(symbol, t) <= day
        ]
        if not in_window:
            return []
        if price > max(p for _, p in in_window):
            return self._emit(symbol, ts, price, "52w", in_window, day)
        return []

    def _emit(
        self,
        symbol: str,
        ts: datetime,
        price: float,
        window: str,
        pool: list[tuple[datetime, float]],
        day: date,
    ) -> list[RecordHigh]:
        q = self.last_emitted.get((symbol, window, day))
        if q is not None and not price >= q * (1 + self.step_pct / 100):
            return []  # suppressed: not re-classified into another window
        previous_high = max(p for _, p in pool)
        previous_high_ts = min(t for t, p in pool if p == previous_high)
        self.last_emitted[(symbol, window, day)] = price
        zone = zone_of(symbol)
        return [
            RecordHigh(
                symbol=symbol,
                ts=ts.astimezone(zone),
                price=price,
                window=window,
                previous_high=previous_high,
                previous_high_ts=previous_high_ts.astimezone(zone),
                change_pct=(price / previous_high - 1) * 100,
            )
        ]


# -- comparison helpers ---------------------------------------------------------------


def engine_view(result: Late | list[Any]) -> Any:
    if isinstance(result, Late):
        return ("late", result.latest.astimezone(UTC), result.behind_s)
    return [s.model_dump(mode="json") for s in result]


def reference_view(result: RefLate | list[RecordHigh]) -> Any:
    if isinstance(result, RefLate):
        return ("late", result.latest.astimezone(UTC), result.behind_s)
    return [s.model_dump(mode="json") for s in result]


def same(engine_out: Any, ref_out: Any) -> bool:
    if isinstance(engine_out, tuple) and isinstance(ref_out, tuple):
        return engine_out[1] == ref_out[1] and math.isclose(engine_out[2], ref_out[2])
    return bool(engine_out == ref_out)
