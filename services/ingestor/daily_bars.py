"""`history fetch`: a source's daily rows -> the history file's bars (docs/feeds.md,
"History from a source").

Pure: which code each source knows a canonical symbol by, the unit of its volume, and
a row (plain values, whatever fetched it) -> a `Bar` or the reason it is skipped. The
bars are validated by the very model `history load` and `backtest --history` read them
with, so a file this writes is one they accept.

A row: `{"date": date | "YYYY-MM-DD", "open", "high", "low", "close": float | None,
"volume": float | None}`, prices as the source gives them, `volume` in the source's
unit (`SourceCode.unit` shares each). NaN counts as missing: the dataframes the
libraries return mark a gap so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import ValidationError

from schemas.bar import Bar
from services.ingestor.akshare_quotes import LOT
from services.ingestor.symbols import SymbolMap
from services.parsing.validation import describe

Source = Literal["akshare", "yahoo"]
# Unadjusted, forward-adjusted (前复权: the latest prices as traded, the past scaled to
# them), backward-adjusted (后复权: the first prices as traded, the rest scaled).
Adjust = Literal["none", "qfq", "hfq"]
SOURCES: tuple[Source, ...] = ("akshare", "yahoo")
ADJUSTS: tuple[Adjust, ...] = ("none", "qfq", "hfq")
# The columns written, in this order; `history load` reads any order.
COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
_REQUIRED = ("high", "close")
_OPTIONAL = ("open", "low", "volume")


class UnknownSymbolError(ValueError):
    """A symbol the source has no code for; the message says why."""


@dataclass(frozen=True, slots=True)
class SourceCode:
    """How a source names a canonical symbol, and its volume's unit in shares."""

    symbol: str  # canonical
    code: str  # the source's
    market: Literal["A", "HK", "other"]
    unit: int


def source_code(source: Source, symbol: str, symbols: SymbolMap) -> SourceCode:
    """`symbol` (any spelling the symbol map reads) as `source` knows it."""
    try:
        canonical = symbols.canonical(symbol)
    except ValueError as exc:
        raise UnknownSymbolError(str(exc)) from None
    number, _, market = canonical.rpartition(".")
    if source == "yahoo":
        # Yahoo spells Shanghai `.SS`; `.SZ`, `.HK` and bare US tickers as marketsignal.
        code = f"{number}.SS" if market == "SH" else canonical
        kind: Literal["A", "HK", "other"] = (
            "A" if market in ("SH", "SZ") else "HK" if market == "HK" else "other"
        )
        return SourceCode(canonical, code, kind, 1)
    if market in ("SH", "SZ") and number.isdigit():
        # stock_zh_a_hist's 成交量 is in lots of 100 (akshare's docs: 注意单位: 手).
        return SourceCode(canonical, number, "A", LOT)
    if market == "HK" and number.isdigit():
        # stock_hk_hist takes five digits (00700) and gives shares (注意单位: 股).
        return SourceCode(canonical, number.zfill(5), "HK", 1)
    raise UnknownSymbolError(
        f"{canonical!r}: akshare's daily history covers Shanghai, Shenzhen and Hong Kong "
        "stocks (600519.SH, 000001.SZ, 0700.HK)"
    )


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):  # pandas' Timestamp too
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def to_bar(code: SourceCode, row: Mapping[str, Any]) -> Bar | str:
    """The bar of one source row, or why it is skipped. A missing high, close or date
    skips it (a bar without them says nothing of the past); a missing open, low or
    volume leaves that field out, as the history file allows."""
    day = _day(row.get("date"))
    if day is None:
        return f"date: not a date ({row.get('date')!r})"
    fields: dict[str, Any] = {"symbol": code.symbol, "date": day}
    for name in _REQUIRED:
        value = _number(row.get(name))
        if value is None:
            return f"{day.isoformat()}: {name}: missing"
        fields[name] = value
    for name in _OPTIONAL:
        value = _number(row.get(name))
        if value is not None:
            fields[name] = value * code.unit if name == "volume" else value
    if "volume" in fields:
        shares = fields["volume"]
        # A volume that is no whole number of shares would be dropped by the Bar model
        # without a word; said here instead.
        if not float(shares).is_integer() or shares < 0:
            return f"{day.isoformat()}: volume: not a whole number of shares ({shares!r})"
        fields["volume"] = int(shares)
    try:
        return Bar.model_validate(fields)
    except ValidationError as exc:
        return f"{day.isoformat()}: {describe(exc).detail}"


def bars_of(code: SourceCode, rows: Iterable[Mapping[str, Any]]) -> Iterator[Bar | str]:
    """Each row's bar or skip reason, in date order; a second row of a date is skipped
    (the history file refuses a second bar of a (symbol, date))."""
    seen: set[date] = set()
    for row in rows:
        bar = to_bar(code, row)
        if isinstance(bar, Bar):
            if bar.date in seen:
                yield f"{bar.date.isoformat()}: a second row for this date"
                continue
            seen.add(bar.date)
        yield bar


def _cell(value: float | int | None) -> str:
    # repr: the shortest text that reads back as the same float.
    return "" if value is None else repr(value)


def csv_header() -> str:
    return ",".join(COLUMNS)


def csv_line(bar: Bar) -> str:
    """One bar as a line of the history file (docs/signals.md, "History")."""
    return ",".join(
        (
            bar.symbol,
            bar.date.isoformat(),
            _cell(bar.open),
            _cell(bar.high),
            _cell(bar.low),
            _cell(bar.close),
            _cell(bar.volume),
        )
    )
