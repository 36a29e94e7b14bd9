"""A source's daily rows -> history bars: codes, units, and what is skipped and why."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.bar import Bar
from services.ingestor.daily_bars import (
    SourceCode,
    UnknownSymbolError,
    bars_of,
    csv_header,
    csv_line,
    source_code,
    to_bar,
)
from services.ingestor.history_fetch import rebase
from services.ingestor.symbols import SymbolMap

A = SourceCode("600519.SH", "600519", "A", 100)


@pytest.mark.parametrize(
    ("source", "symbol", "code", "unit"),
    [
        ("akshare", "600519.SH", "600519", 100),
        ("akshare", "600519.SS", "600519", 100),
        ("akshare", "000001.SZ", "000001", 100),
        ("akshare", "0700.HK", "00700", 1),
        ("akshare", "HK.02513", "02513", 1),
        ("yahoo", "600519.SH", "600519.SS", 1),
        ("yahoo", "HK.00700", "0700.HK", 1),
        ("yahoo", "AAPL", "AAPL", 1),
    ],
)
def test_source_codes(source: str, symbol: str, code: str, unit: int) -> None:
    found = source_code(source, symbol, SymbolMap())  # type: ignore[arg-type]
    assert (found.code, found.unit) == (code, unit)


def test_a_symbol_akshare_has_no_history_for_is_refused() -> None:
    with pytest.raises(UnknownSymbolError, match="covers Shanghai, Shenzhen and Hong Kong"):
        source_code("akshare", "AAPL", SymbolMap())
    with pytest.raises(UnknownSymbolError, match="a HK code is digits"):
        source_code("yahoo", "HK.TCH", SymbolMap())


def test_a_row_becomes_a_bar_with_its_volume_in_shares() -> None:
    row = {
        "date": date(2026, 2, 13),
        "open": 1500,
        "high": 1520.5,
        "low": 1490,
        "close": 1510,
        "volume": 300.0,
    }
    assert to_bar(A, row) == Bar(
        symbol="600519.SH",
        date=date(2026, 2, 13),
        open=1500,
        high=1520.5,
        low=1490,
        close=1510,
        volume=30_000,
    )


def test_a_timestamp_gives_its_own_local_date() -> None:
    stamp = datetime(2026, 2, 13, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    bar = to_bar(A, {"date": stamp, "high": 2, "close": 1})
    assert isinstance(bar, Bar)
    assert bar.date == date(2026, 2, 13)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"date": "2026-02-13", "high": math.nan, "close": 1}, "2026-02-13: high: missing"),
        ({"date": "2026-02-13", "high": 2}, "2026-02-13: close: missing"),
        ({"date": None, "high": 2, "close": 1}, "date: not a date (None)"),
        ({"date": "2026-02-13", "high": 1, "close": 2}, "2026-02-13: "),  # close > high
        (
            {"date": "2026-02-13", "high": 2, "close": 1, "volume": 0.125},
            "2026-02-13: volume: not a whole number of shares (12.5)",
        ),
    ],
)
def test_a_row_that_is_no_bar_is_skipped_with_its_reason(row: dict[str, Any], reason: str) -> None:
    skipped = to_bar(A, row)
    assert isinstance(skipped, str)
    assert skipped.startswith(reason)


def test_missing_optional_fields_are_left_out_and_a_second_row_of_a_day_skipped() -> None:
    rows = [
        {"date": "2026-02-13", "high": 2, "close": 1, "open": math.nan, "volume": None},
        {"date": "2026-02-13", "high": 3, "close": 2},
    ]
    first, second = bars_of(A, rows)
    assert isinstance(first, Bar)
    assert (first.open, first.volume) == (None, None)
    assert second == "2026-02-13: a second row for this date"
    assert csv_header() == "symbol,date,open,high,low,close,volume"
    assert csv_line(first) == "600519.SH,2026-02-13,,2.0,,1.0,"


@pytest.mark.parametrize(
    ("url", "base", "rebased"),
    [
        (
            "https://push2his.eastmoney.com/api/qt/stock/kline/get?secid=1.600519",
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/api/qt/stock/kline/get?secid=1.600519",
        ),
        (
            "https://query2.finance.yahoo.com/v8/finance/chart/0700.HK?interval=1d",
            "http://relay.local/yahoo/",
            "http://relay.local/yahoo/v8/finance/chart/0700.HK?interval=1d",
        ),
    ],
)
def test_a_request_rebased_keeps_its_path_and_query(url: str, base: str, rebased: str) -> None:
    assert rebase(url, base) == rebased
