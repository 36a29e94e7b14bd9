"""`history fetch`: daily rows from akshare or Yahoo (through yfinance), as plain rows
for services/ingestor/daily_bars.py.

- akshare (extra `akshare`): `stock_zh_a_hist` for A-shares, `stock_hk_hist` for Hong
  Kong, both Eastmoney's kline API (`push2his.eastmoney.com/api/qt/stock/kline/get`,
  rows `"date,open,close,high,low,volume,..."` in `data.klines`).
- Yahoo (extra `yahoo`): yfinance's `Ticker.history`, Yahoo's chart API
  (`query2.finance.yahoo.com/v8/finance/chart/TICKER`).

`base_url` (MARKETSIGNAL_HISTORY_FETCH_URL) sends every HTTP request the library makes to
that base instead, path and query kept: a relay or cache in front of the source, or the
tests' stand-in on loopback. Both libraries speak HTTP through `requests` here (yfinance
is handed a `requests.Session` then, not its default curl_cffi one), so one rewrite of
`requests.Session.request` covers both, for the duration of the fetch only.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.ingestor.daily_bars import Adjust, Source, SourceCode
from services.ingestor.extras import require

# akshare's names for the adjustments.
_AKSHARE_ADJUST: dict[Adjust, str] = {"none": "", "qfq": "qfq", "hfq": "hfq"}
# The columns of stock_zh_a_hist and stock_hk_hist -> a row's fields.
_AKSHARE_COLUMNS = {
    "日期": "date",
    "开盘": "open",
    "最高": "high",
    "最低": "low",
    "收盘": "close",
    "成交量": "volume",
}
_YAHOO_COLUMNS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Volume": "volume",
}


class NoDataError(Exception):
    """The source answered, with no rows for the symbol."""


def rebase(url: str, base: str) -> str:
    """`url` with the scheme and host of `base` (and `base`'s path before its own)."""
    target, original = urlsplit(base), urlsplit(url)
    path = target.path.rstrip("/") + original.path
    return urlunsplit((target.scheme, target.netloc, path, original.query, original.fragment))


@contextmanager
def requests_to(base_url: str | None) -> Iterator[None]:
    """While open, every `requests` request goes to `base_url` (module docstring)."""
    if base_url is None:
        yield
        return
    import requests  # noqa: PLC0415 - it comes with the extras, not with marketsignal

    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return original(self, method, rebase(url, base_url), *args, **kwargs)

    requests.Session.request = request  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        requests.Session.request = original  # type: ignore[method-assign]


def fetch_rows(
    source: Source,
    code: SourceCode,
    days: int,
    adjust: Adjust,
    today: date,
    base_url: str | None = None,
) -> list[dict[str, Any]]:
    """The rows of the last `days` calendar days up to `today`, oldest first;
    NoDataError if there are none, MissingExtraError without the source's extra, any
    other exception as the library raised it."""
    start = today - timedelta(days=days)
    # yfinance runs on a pandas it warns about (inplace=...): not the user's concern.
    with requests_to(base_url), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="yfinance")
        if source == "akshare":
            rows = _akshare_rows(code, start, today, adjust)
        else:
            rows = _yahoo_rows(code, start, today, adjust, redirected=base_url is not None)
    if not rows:
        raise NoDataError(f"{source} has no daily bars for {code.code} since {start.isoformat()}")
    return rows


def require_source(source: Source) -> ModuleType:
    """The source's library; MissingExtraError naming its extra if it is not installed."""
    module, extra = ("akshare", "akshare") if source == "akshare" else ("yfinance", "yahoo")
    return require(module, extra, f"history fetch --source {source}")


def _akshare_rows(code: SourceCode, start: date, end: date, adjust: Adjust) -> list[dict[str, Any]]:
    akshare = require_source("akshare")
    function = akshare.stock_zh_a_hist if code.market == "A" else akshare.stock_hk_hist
    frame = function(
        symbol=code.code,
        period="daily",
        start_date=start.strftime("%Y%m%d"),
        end_date=end.strftime("%Y%m%d"),
        adjust=_AKSHARE_ADJUST[adjust],
    )
    if frame is None or frame.empty:
        return []
    # Note: stock_hk_hist reads data.klines without a check, so an HK code Eastmoney does
    # not know fails inside akshare (a TypeError), reported as the source's failure.
    return [
        {field: record.get(column) for column, field in _AKSHARE_COLUMNS.items()}
        for record in frame.to_dict("records")
    ]


def _yahoo_rows(
    code: SourceCode, start: date, end: date, adjust: Adjust, redirected: bool
) -> list[dict[str, Any]]:
    yfinance = require_source("yahoo")
    session = None
    if redirected:
        import requests  # noqa: PLC0415 - it comes with the extras, not with marketsignal

        session = requests.Session()
    ticker = yfinance.Ticker(code.code, session=session)
    frame = ticker.history(
        start=start.isoformat(),
        end=(end + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
        interval="1d",
        auto_adjust=adjust == "qfq",
        rounding=True,  # adjusted prices to Yahoo's priceHint decimals, not 478.04081632
        actions=False,
        keepna=True,  # a row with a gap is reported as skipped, not dropped unseen
        raise_errors=True,
    )
    if frame is None or frame.empty:
        return []
    rows = []
    # The index is the bar's day at midnight in the exchange's zone: its date is the
    # exchange-local date the history file wants.
    for stamp, record in zip(frame.index, frame.to_dict("records"), strict=True):
        row: dict[str, Any] = {"date": stamp}
        row.update({field: record.get(column) for column, field in _YAHOO_COLUMNS.items()})
        rows.append(row)
    return rows
