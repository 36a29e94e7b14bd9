"""`ingest --akshare --codes 600519,00700`: quotes polled through akshare, as snapshots.

A poll returns one row per code, a plain dict (the `Fetch` contract, whatever fetched it):

    {"code": "600519", "price": 1520.5, "volume": 8726, "unit": 100,
     "time": "2026-02-13 10:00:03"}

`volume` is the day's cumulative volume in units of `unit` shares (100: A-share lots,
"手"; 1: shares), `time` the quote's time, optional: zone-less local time (as Chinese
sources give it) is read in the symbol's exchange zone, one with an offset as it is;
without one the tick takes the poll's time. Each row becomes a `Snapshot` and, by the
snapshot rule (services/ingestor/snapshots.py), a tick only when the price or the
cumulative volume changed.

The built-in fetch (`akshare_fetch`) calls akshare (docs/feeds.md cites the units):

- A-shares, one request per code: `stock_bid_ask_em(symbol)`, its "最新" (last price)
  and "总手" (total lots: the same function multiplies its order-book volumes by 100 to
  give shares, and leaves "总手" in lots);
- Hong Kong, one request for the whole market, filtered: `stock_hk_spot_em()`, its
  "最新价" and "成交量" (shares, per akshare's documentation; 15 minutes delayed).

Neither gives the quote's time: the tick takes the poll's. Pure but for `akshare_fetch`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from services.ingestor.adapters.base import Item, Mapped, Rejected, parse_symbols
from services.ingestor.extras import require
from services.ingestor.snapshots import Snapshot, SnapshotTrades, problem
from services.ingestor.symbols import SymbolMap, UnmappableSymbolError

LOT = 100  # shares in an A-share lot ("手")
_A_SHARE_DIGITS = 6
_HK_MAX_DIGITS = 5

# The codes to poll -> one row per code it could read (see the module docstring).
Fetch = Callable[[Sequence[str]], list[dict[str, Any]]]


def market_symbol(code: str) -> str:
    """A bare exchange code in Futu's market-first spelling, which the symbol map reads:
    six digits are an A-share (Shanghai's start with 6 or 9, Shenzhen's with 0, 2 or 3),
    one to five an HKEX code; ValueError otherwise."""
    if not (code.isascii() and code.isdigit()):
        raise ValueError(f"--codes: {code!r} is not an exchange code (digits)")
    if len(code) == _A_SHARE_DIGITS:
        if code[0] in "69":
            return f"SH.{code}"
        if code[0] in "023":
            return f"SZ.{code}"
        raise ValueError(f"--codes: {code!r} is neither a Shanghai nor a Shenzhen code")
    if len(code) <= _HK_MAX_DIGITS:
        return f"HK.{code}"
    raise ValueError(f"--codes: {code!r} has neither 6 digits (A-share) nor 1 to 5 (HK)")


def parse_codes(text: str, symbols: SymbolMap) -> tuple[str, ...]:
    """`--codes 600519,00700`: each code once, in order; ValueError if one has no
    canonical symbol (checked at start, not at the first poll)."""
    codes = parse_symbols(text, "--codes", "600519,00700")
    for code in codes:
        try:
            symbols.canonical(market_symbol(code))
        except UnmappableSymbolError as exc:
            raise ValueError(f"--codes: {exc}") from None
    return codes


class AkshareSnapshots:
    """A polled row -> a tick when its listing's state changed (None when not)."""

    def __init__(self, symbols: SymbolMap) -> None:
        self.symbols = symbols
        self.trades = SnapshotTrades()

    def __call__(self, row: Mapping[str, Any], polled_at: datetime) -> Item | None:
        code = row.get("code")
        if not isinstance(code, str):
            return Rejected(row, "symbol", f"code: not a string ({code!r})")
        try:
            symbol = self.symbols.canonical(market_symbol(code))
        except (ValueError, UnmappableSymbolError) as exc:
            return Rejected(row, "symbol", str(exc))
        volume = shares(row.get("volume"), row.get("unit", 1))
        if isinstance(volume, str):
            return Rejected(row, "volume", volume)
        ts = local_time(row.get("time"), polled_at)
        if ts is None:
            return Rejected(row, "ts", f"time: {row.get('time')!r} is no date and time")
        snapshot = Snapshot(symbol=symbol, ts=ts, price=_number(row.get("price")), volume=volume)
        wrong = problem(snapshot)
        if wrong is not None:
            return Rejected(row, *wrong)
        fields = self.trades.trade(snapshot)
        return None if fields is None else Mapped(fields, row)


def shares(volume: Any, unit: Any) -> int | str:
    """A cumulative volume in `unit`-share units as shares, or why it is no volume. The
    sources give floats (pandas columns): a whole number of units is required."""
    volume, unit = _number(volume), _number(unit)
    if not isinstance(unit, int) or isinstance(unit, bool) or unit < 1:
        return f"unit: not a whole number of shares >= 1 ({unit!r})"
    if isinstance(volume, float) and volume.is_integer():
        volume = int(volume)
    if not isinstance(volume, int) or isinstance(volume, bool) or volume < 0:
        return f"volume: not a whole number >= 0 ({volume!r})"
    return volume * unit


def local_time(value: Any, polled_at: datetime) -> str | None:
    """The tick's ts: the row's time as ISO 8601 (zone-less stays zone-less: the
    screener reads it in the symbol's exchange zone), the poll's without one; None if
    the row's time is unreadable."""
    if value is None:
        return polled_at.isoformat()
    if not isinstance(value, str):
        return None
    try:
        # Sina writes dates with slashes ("2025/07/07 16:08:06").
        return datetime.fromisoformat(value.strip().replace("/", "-")).isoformat()
    except ValueError:
        return None


def _number(value: Any) -> Any:
    """numpy's scalars (what a pandas row holds) as Python numbers; NaN (pandas' "no
    value", e.g. a suspended listing) stays NaN and fails validation."""
    if hasattr(value, "item") and not isinstance(value, int | float | str):
        return value.item()
    return value


def akshare_fetch() -> Fetch:
    """The built-in fetch (module docstring); MissingExtraError without the extra."""
    ak = require("akshare", "akshare", "--akshare")

    def fetch(codes: Sequence[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        hk = [c for c in codes if len(c) != _A_SHARE_DIGITS]
        for code in codes:
            if len(code) == _A_SHARE_DIGITS:
                frame = ak.stock_bid_ask_em(symbol=code)
                quote = dict(zip(frame["item"], frame["value"], strict=True))
                rows.append(
                    {
                        "code": code,
                        "price": quote.get("最新"),
                        "volume": quote.get("总手"),
                        "unit": LOT,
                    }
                )
        if hk:
            # akshare spells HK codes with five digits ("00700"); --codes may not.
            wanted = {code.zfill(_HK_MAX_DIGITS) for code in hk}
            frame = ak.stock_hk_spot_em()
            for record in frame.to_dict("records"):
                if record["代码"] in wanted:
                    rows.append(
                        {
                            "code": record["代码"],
                            "price": record["最新价"],
                            "volume": record["成交量"],
                            "unit": 1,
                        }
                    )
        return [{k: _number(v) for k, v in row.items()} for row in rows]

    return fetch
