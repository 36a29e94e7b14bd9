"""A stand-in on loopback for the HTTP APIs `history fetch` reads through akshare and
yfinance: `MARKETSIGNAL_HISTORY_FETCH_URL=http://127.0.0.1:PORT` sends the libraries'
requests here, path and query kept (services/ingestor/history_fetch.py).

The bodies are in the shapes the libraries parse (akshare 1.19.5, yfinance 1.7.0):

- Eastmoney's kline API, `GET /api/qt/stock/kline/get?secid=1.600519&fqt=1&...`
  (stock_zh_a_hist; stock_hk_hist asks for `secid=116.00700`): `{"rc":0,"data":{"code",
  "klines":["date,open,close,high,low,volume,amount,amplitude,pct,change,turnover",...]}}`,
  and `"data": null` for a code it does not know, as Eastmoney answers;
- Yahoo's chart API, `GET /v8/finance/chart/0700.HK` (yfinance's timezone look-up and its
  history both): `{"chart":{"result":[{"meta":...,"timestamp":[...],"indicators":{"quote":
  [{"open","high","low","close","volume"}],"adjclose":[{"adjclose"}]}}],"error":null}}`,
  a 404 with `result: null` for an unknown ticker; and yfinance's cookie and crumb calls
  (`fc.yahoo.com`'s `/`, `/v1/test/getcrumb`).

Every request is recorded (path and query) for the tests to check what was asked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

# An Eastmoney kline row: date, open, close, high, low, volume (A-share lots, HK shares).
Kline = tuple[str, str, str, str, str, str]
# A Yahoo day: date, open, high, low, close (None: Yahoo's null), volume, adjclose.
YahooDay = tuple[str, float | None, float | None, float | None, float | None, int | None, float]


def kline_body(code: str, klines: Sequence[Kline]) -> dict[str, Any]:
    rows = [
        f"{d},{o},{c},{h},{lo},{v},1000000.00,2.00,0.50,1.00,0.30" for d, o, c, h, lo, v in klines
    ]
    return {"rc": 0, "rt": 17, "svr": 1, "lt": 1, "full": 0, "data": {"code": code, "klines": rows}}


def chart_body(ticker: str, zone: str, days: Sequence[YahooDay], open_at: time) -> dict[str, Any]:
    tz = ZoneInfo(zone)
    stamps = [
        int(datetime.combine(date.fromisoformat(d[0]), open_at, tzinfo=tz).timestamp())
        for d in days
    ]
    offset = int(datetime.now(tz).utcoffset().total_seconds())  # type: ignore[union-attr]
    period = {"timezone": zone, "start": stamps[-1], "end": stamps[-1] + 23400, "gmtoffset": offset}
    meta = {
        "currency": "HKD",
        "symbol": ticker,
        "exchangeName": "HKG",
        "instrumentType": "EQUITY",
        "firstTradeDate": stamps[0],
        "regularMarketTime": stamps[-1],
        "gmtoffset": offset,
        "timezone": "HKT",
        "exchangeTimezoneName": zone,
        "regularMarketPrice": days[-1][4],
        "chartPreviousClose": days[0][4],
        "priceHint": 3,
        "currentTradingPeriod": {"pre": period, "regular": period, "post": period},
        "dataGranularity": "1d",
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    quote = {
        "open": [d[1] for d in days],
        "high": [d[2] for d in days],
        "low": [d[3] for d in days],
        "close": [d[4] for d in days],
        "volume": [d[5] for d in days],
    }
    result = {
        "meta": meta,
        "timestamp": stamps,
        "indicators": {"quote": [quote], "adjclose": [{"adjclose": [d[6] for d in days]}]},
    }
    return {"chart": {"result": [result], "error": None}}


class HistoryServer:
    """`klines` by Eastmoney secid (`1.600519`, `116.00700`), `charts` by Yahoo ticker."""

    def __init__(
        self, klines: Mapping[str, dict[str, Any]], charts: Mapping[str, dict[str, Any]]
    ) -> None:
        self.klines = dict(klines)
        self.charts = dict(charts)
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                server.requests.append((parts.path, query))
                status, body, content_type = server.answer(parts.path, query)
                payload = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                if parts.path == "/":
                    self.send_header("Set-Cookie", "A3=d=standin; Path=/")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, str]:
        if path == "/api/qt/stock/kline/get":
            secid = query.get("secid", [""])[0]
            body = self.klines.get(secid, {"rc": 0, "rt": 17, "data": None})
            return 200, json.dumps(body, ensure_ascii=False), "application/json"
        if path.startswith("/v8/finance/chart/"):
            chart = self.charts.get(path.rsplit("/", 1)[1])
            if chart is None:
                error = {
                    "code": "Not Found",
                    "description": "No data found, symbol may be delisted",
                }
                return (
                    404,
                    json.dumps({"chart": {"result": None, "error": error}}),
                    "application/json",
                )
            return 200, json.dumps(chart), "application/json"
        if path == "/v1/test/getcrumb":
            return 200, "standin-crumb", "text/plain"
        if path == "/":
            return 200, "", "text/html"
        # Yahoo's answer to anything it does not know (quoteSummary of an unknown ticker).
        error = {"code": "Not Found", "description": "Quote not found for symbol"}
        return 404, json.dumps({"finance": {"result": None, "error": error}}), "application/json"

    def __enter__(self) -> HistoryServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
