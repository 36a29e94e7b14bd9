"""`ingest --futu HOST:PORT --codes HK.00700,SH.600519`: Futu/moomoo OpenD's ticker push.

futu-api's `TickerHandlerBase.on_recv_rsp` hands a DataFrame of tick-by-tick trades
(https://openapi.futunn.com/futu-api-doc/en/quote/update-ticker.html; the columns as
futu/quote/quote_response_handler.py builds them), one row each:

    {"code": "HK.00700", "name": "腾讯控股", "time": "2023-07-19 15:59:58.000",
     "price": 332.4, "volume": 100, "turnover": 33240.0, "ticker_direction": "SELL",
     "sequence": 7257436441708356760, "type": "AUTO_MATCH", "push_data_type": "REALTIME"}

A row becomes the tick symbol = `code` through the symbol map (HK.00700 -> 0700.HK,
SH.600519 -> 600519.SH, SZ.000001 -> 000001.SZ, US.AAPL -> AAPL), ts = `time`, price =
`price`, volume = `volume` (shares), kind "trade". `time` has no zone: Futu documents it
in Beijing time for HK and A-shares, which the screener's exchange zones give (Asia/
Hong_Kong and Asia/Shanghai, both UTC+8 all year), and in US Eastern time for US codes,
which is attached here (a bare US ticker's exchange zone is UTC). Futu documents the
format as `yyyy-MM-dd HH:mm:ss:xxx` and prints `... 15:59:58.000`; both are read.

Sequence numbers (`SequenceWatch`): per code, a `sequence` at or below the last one seen
is a repeat (OpenD re-sends, e.g. its catch-up after a disconnect, `BYDISCONN`) and is
not published again. A gap is read from the low 32 bits: in Futu's own examples the high
32 bits are the trade's epoch second and the low 32 bits count the code's trades (HK.00700:
...356760 and ...200985 are trades 25752 and 25753), so a low part more than one past
the last is that many trades missed. Where the low part does not count (Futu's US example
has 0 there), no gap can be seen, and none is claimed. Gaps and repeats are counted, and
logged once per burst: a warning when a code's run of anomalies starts, one line with its
totals when the code is back in order. Pure: no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.ingestor.adapters.base import Item, Mapped, Rejected, symbol_of
from services.ingestor.symbols import SymbolMap

log = logging.getLogger("marketsignal.ingestor.futu")

_US_EASTERN = ZoneInfo("America/New_York")
_LOW_BITS = 0xFFFF_FFFF


@dataclass
class _Burst:
    """A code's current run of out-of-order sequences."""

    gaps: int = 0
    missed: int = 0
    repeats: int = 0


@dataclass
class SequenceTotals:
    gaps: int = 0  # times the sequence jumped
    missed: int = 0  # trades those jumps skipped
    repeats: int = 0  # rows at or below the last sequence: not published


class SequenceWatch:
    """Per code: repeats dropped, gaps counted, each burst logged once."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.bursts: dict[str, _Burst] = {}
        self.totals = SequenceTotals()

    def fresh(self, code: str, sequence: int) -> bool:
        """Whether the row is new (to publish); counts and logs what is not in order."""
        last = self.last.get(code)
        if last is not None and sequence <= last:
            self.totals.repeats += 1
            self._burst(code, "repeat", last, sequence).repeats += 1
            return False
        self.last[code] = sequence
        missed = 0 if last is None else _missed(last, sequence)
        if missed:
            self.totals.gaps += 1
            self.totals.missed += missed
            burst = self._burst(code, "gap", last, sequence)
            burst.gaps += 1
            burst.missed += missed
        else:
            self._in_order(code)
        return True

    def _burst(self, code: str, kind: str, last: int | None, sequence: int) -> _Burst:
        burst = self.bursts.get(code)
        if burst is None:
            burst = self.bursts[code] = _Burst()
            log.warning(
                "%s: sequence %s after %s (a %s); further gaps and repeats of %s are not "
                "logged until it is back in order",
                code,
                sequence,
                last,
                kind,
                code,
            )
        return burst

    def _in_order(self, code: str) -> None:
        burst = self.bursts.pop(code, None)
        if burst is not None:
            log.warning(
                "%s: back in order after %d gap(s) (%d trade(s) missed) and %d repeat(s)",
                code,
                burst.gaps,
                burst.missed,
                burst.repeats,
            )


def _missed(last: int, sequence: int) -> int:
    """Trades skipped between two sequences, by the low 32 bits' count (module docstring)."""
    last_low, low = last & _LOW_BITS, sequence & _LOW_BITS
    if last_low == 0 or low <= last_low:  # no count there, or it restarted (a new day)
        return 0
    return low - last_low - 1


class FutuTickers:
    """The mapping: a ticker row -> its tick, or None for a repeat."""

    def __init__(self, symbols: SymbolMap) -> None:
        self.symbols = symbols
        self.sequences = SequenceWatch()

    def __call__(self, row: Mapping[str, Any]) -> Item | None:
        code, sequence = row.get("code"), row.get("sequence")
        if not isinstance(code, str):
            return Rejected(row, "symbol", f"code: not a string ({code!r})")
        if isinstance(sequence, bool) or not isinstance(sequence, int):
            return Rejected(row, None, f"sequence: not an integer ({sequence!r})")
        if not self.sequences.fresh(code, sequence):
            return None
        symbol = symbol_of(row, "code", self.symbols)
        if isinstance(symbol, Rejected):
            return symbol
        ts = trade_time(row.get("time"), us=code.upper().startswith("US."))
        if ts is None:
            return Rejected(
                row, "ts", f"time: {row.get('time')!r} is not yyyy-MM-dd HH:mm:ss[.xxx]"
            )
        volume = row.get("volume")
        if isinstance(volume, float) and volume.is_integer():
            volume = int(volume)  # futu-api's high-precision volume is a float
        fields = {"symbol": symbol, "ts": ts, "price": row.get("price"), "volume": volume}
        return Mapped({**fields, "kind": "trade"}, row)


def trade_time(value: Any, *, us: bool) -> str | None:
    """Futu's local trade time as ISO 8601: zone-less (the screener applies the exchange
    zone), or with US Eastern's offset for a US code; None if unreadable."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    # `yyyy-MM-dd HH:mm:ss:xxx` as documented: the milliseconds after a third colon.
    if text.count(":") == 3:
        head, _, millis = text.rpartition(":")
        text = f"{head}.{millis}"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is not None:
        return when.isoformat()
    return when.replace(tzinfo=_US_EASTERN).isoformat() if us else when.isoformat()
