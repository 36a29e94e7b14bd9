"""`history fetch --source akshare|yahoo`: akshare and yfinance, unpatched, against a
stand-in on loopback for the HTTP APIs they call (tests/support/history_server.py), then
`backtest --history` reading the file written.

No Kafka or Redis: the network here is the stand-in alone, reached through
MARKETSIGNAL_HISTORY_FETCH_URL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date, time, timedelta
from pathlib import Path

import pytest

from tests.support.history_server import HistoryServer, chart_body, kline_body
from tests.support.services import run_cli

pytestmark = pytest.mark.integration

TODAY = date.today()
# Four past days, oldest first (weekends do not matter to the stand-in).
D = [(TODAY - timedelta(days=n)).isoformat() for n in (5, 4, 3, 2)]

KLINES = {
    # stock_zh_a_hist: date, open, close, high, low, volume in lots of 100
    "1.600519": kline_body(
        "600519",
        [
            (D[0], "1500.00", "1510.00", "1520.00", "1490.00", "30000"),
            (D[1], "1510.00", "", "1530.00", "1500.00", "25000"),  # no close: skipped
            (D[2], "1510.00", "1525.50", "1540.00", "1505.00", "27000"),
        ],
    ),
    # stock_hk_hist: volume in shares
    "116.00700": kline_body("00700", [(D[0], "480.0", "490.0", "496.0", "478.0", "12000000")]),
}
CHARTS = {
    # date, open, high, low, close, volume, adjclose
    "0700.HK": chart_body(
        "0700.HK",
        "Asia/Hong_Kong",
        [
            (D[0], 480.0, 496.0, 478.0, 490.0, 12_000_000, 490.0),
            (D[1], 490.0, None, 485.0, None, 0, 489.0),  # Yahoo's nulls: skipped
            (D[2], 491.0, 499.0, 489.0, 495.0, 13_000_000, 495.0),
            (D[3], 495.0, 502.5, 494.0, 500.0, 9_000_000, 500.0),
        ],
        time(9, 30),
    )
}


@pytest.fixture
def server() -> Iterator[HistoryServer]:
    with HistoryServer(KLINES, CHARTS) as running:
        yield running


@pytest.fixture
def env(server: HistoryServer, tmp_path: Path) -> dict[str, str]:
    """The stand-in as the sources, and yfinance's caches (its ticker time zones) in
    `tmp_path`, not in the user's: the stand-in's answers stay out of real runs."""
    return dict(
        os.environ,
        MARKETSIGNAL_HISTORY_FETCH_URL=server.url,
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )


def fetch(env: dict[str, str], *args: str) -> tuple[int, list[dict[str, str]], str]:
    done = run_cli("history", "fetch", *args, env=env)
    lines = done.stdout.splitlines()
    header = lines[0].split(",") if lines else []
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    return done.returncode, rows, done.stderr


def test_akshare_bars_in_shares_qfq_by_default(server: HistoryServer, env: dict[str, str]) -> None:
    code, rows, err = fetch(env, "--source", "akshare", "600519.SH,HK.00700", "--days", "30")
    assert code == 0, err
    assert [(r["symbol"], r["date"], r["high"], r["close"], r["volume"]) for r in rows] == [
        ("600519.SH", D[0], "1520.0", "1510.0", "3000000"),  # 30,000 lots
        ("600519.SH", D[2], "1540.0", "1525.5", "2700000"),
        ("0700.HK", D[0], "496.0", "490.0", "12000000"),  # HK: shares already
    ]
    assert f"600519.SH: bar skipped: {D[1]}: close: missing" in err
    asked = {q["secid"][0]: q for path, q in server.requests if path == "/api/qt/stock/kline/get"}
    assert set(asked) == {"1.600519", "116.00700"}
    assert {q["fqt"][0] for q in asked.values()} == {"1"}  # qfq
    start = (TODAY - timedelta(days=30)).strftime("%Y%m%d")
    assert (asked["1.600519"]["beg"][0], asked["1.600519"]["end"][0]) == (
        start,
        TODAY.strftime("%Y%m%d"),
    )


def test_akshare_unadjusted_on_request(server: HistoryServer, env: dict[str, str]) -> None:
    code, rows, err = fetch(env, "--source", "akshare", "600519.SH", "--adjust", "none")
    assert code == 0, err
    assert len(rows) == 2
    assert [q["fqt"] for path, q in server.requests if path.endswith("/kline/get")] == [["0"]]


def test_yahoo_bars_on_the_exchange_dates(server: HistoryServer, env: dict[str, str]) -> None:
    code, rows, err = fetch(env, "--source", "yahoo", "0700.HK", "--adjust", "none")
    assert code == 0, err
    assert [(r["date"], r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows] == [
        (D[0], "480.0", "496.0", "478.0", "490.0", "12000000"),
        (D[2], "491.0", "499.0", "489.0", "495.0", "13000000"),
        (D[3], "495.0", "502.5", "494.0", "500.0", "9000000"),
    ]
    assert f"0700.HK: bar skipped: {D[1]}: high: missing" in err
    charts = [q for path, q in server.requests if path == "/v8/finance/chart/0700.HK"]
    assert any(q.get("interval") == ["1d"] and "period1" in q for q in charts)


def test_yahoo_qfq_scales_the_past_to_the_latest_close(
    server: HistoryServer, env: dict[str, str]
) -> None:
    charts = {"0700.HK": json.loads(json.dumps(CHARTS["0700.HK"]))}
    # A dividend before D[2]: Yahoo's adjclose of D[0] is 2% under its close.
    charts["0700.HK"]["chart"]["result"][0]["indicators"]["adjclose"][0]["adjclose"][0] = 480.2
    server.charts = charts
    code, rows, err = fetch(env, "--source", "yahoo", "0700.HK")
    assert code == 0, err
    first, last = rows[0], rows[-1]
    assert (first["close"], first["high"]) == ("480.2", "486.08")  # 496 * 480.2 / 490
    assert (last["close"], last["high"]) == ("500.0", "502.5")  # the latest as traded


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--source", "akshare", "AAPL"), "akshare's daily history covers"),
        (("--source", "akshare", "HK.TCH"), "a HK code is digits"),
        (("--source", "yahoo", "0700.HK", "--adjust", "hfq"), "no backward-adjusted"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    code, rows, err = fetch(env, *args)
    assert code == 2
    assert rows == []
    assert err.count("\n") == 1
    assert message in err


def test_a_symbol_without_data_exits_1_after_the_others(env: dict[str, str]) -> None:
    code, rows, err = fetch(env, "--source", "akshare", "000001.SZ,600519.SH")
    assert code == 1
    assert {r["symbol"] for r in rows} == {"600519.SH"}
    assert "marketsignal: 000001.SZ: akshare has no daily bars for 000001" in err
    # stock_hk_hist reads Eastmoney's `"data": null` without a check: akshare's failure
    code, rows, err = fetch(env, "--source", "akshare", "0005.HK")
    assert code == 1
    assert rows == []
    assert "marketsignal: 0005.HK: akshare failed: TypeError" in err
    code, rows, err = fetch(env, "--source", "yahoo", "0005.HK")
    assert code == 1
    assert rows == []
    assert "marketsignal: 0005.HK: yahoo failed" in err


def test_backtest_judges_a_record_high_against_the_fetched_history(
    env: dict[str, str], tmp_path: Path
) -> None:
    done = run_cli("history", "fetch", "--source", "akshare", "600519.SH", env=env)
    assert done.returncode == 0, done.stderr
    bars, ticks = tmp_path / "bars.csv", tmp_path / "ticks.csv"
    bars.write_text(done.stdout)
    day = TODAY.isoformat()
    ticks.write_text(
        "symbol,ts,price\n"
        f"600519.SH,{day}T10:00:00+08:00,1530\n"  # under the fetched high of 1540
        f"600519.SH,{day}T10:01:00+08:00,1545\n"  # over it: an all-time high
    )
    run = run_cli("backtest", str(ticks), "--history", str(bars))
    assert run.returncode == 0, run.stderr
    signals = [json.loads(line) for line in run.stdout.splitlines()]
    highs = [s for s in signals if s["kind"] == "record_high"]
    assert [(s["price"], s["window"], s["previous_high"]) for s in highs] == [
        (1545.0, "all_time", 1540.0)
    ]
    assert highs[0]["previous_high_ts"] == f"{D[2]}T00:00:00+08:00"
