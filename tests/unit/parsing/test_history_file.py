"""History files: bad bars reported with their line numbers, and `backtest --history`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import main
from services.parsing.history import BadBar, read_bars
from tests.support.summary import summary_counts

BARS = """\

symbol,date,high,close,open,low
X.HK,2026-01-02,105,100,101,99
X.HK,2026-01-02,106,100,,
X.HK,2026-01-05,99,100,,
X.HK,2026-02-30,105,100,,
X.HK,02/01/2026,105,100,,
X.HK,2026-01-06,105,100,106,
X.HK,2026-01-07,105,100,101,100.5
X.HK,2026-01-08,105,100,99,99.5
X.HK,2026-01-09,NaN,100,,
X.HK,2200-01-01,105,100,,
X.HK,2026-01-12,105
X.HK,2026-01-13,110,104,,
"""


def test_bad_bars_are_reported_with_physical_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(BARS)
    items = list(read_bars(path))
    good = [item for item in items if not isinstance(item, BadBar)]
    bad = {item.line: item.reason for item in items if isinstance(item, BadBar)}
    assert [(line, bar.date.isoformat()) for line, bar in good] == [
        (3, "2026-01-02"),
        (14, "2026-01-13"),
    ]
    assert "a second bar for X.HK on 2026-01-02 (first on line 3)" in bad[4]
    assert "close 100 is above high 99" in bad[5]
    assert "'2026-02-30' is not a real date" in bad[6]
    assert "YYYY-MM-DD" in bad[7]
    assert "open 106 is above high 105" in bad[8]
    assert "low 100.5 is above close 100" in bad[9]
    assert "low 99.5 is above open 99" in bad[10]
    assert bad[11].startswith("high:")
    assert "outside 1970..2199" in bad[12]
    assert "close: missing" in bad[13]
    assert sorted(bad) == list(range(4, 14))


def test_json_bars_reject_booleans_and_non_finite_values(tmp_path: Path) -> None:
    path = tmp_path / "bars.jsonl"
    path.write_text(
        '{"symbol":"X","date":"2026-01-02","high":true,"close":1}\n'
        '{"symbol":"X","date":"2026-01-03","high":2,"close":Infinity}\n'
        '{"symbol":"X","date":"2026-01-04","high":2,"close":1,"volume":7}\n'
    )
    items = list(read_bars(path))
    assert isinstance(items[0], BadBar)
    assert "high: must be a number, not a boolean" in items[0].reason
    assert isinstance(items[1], BadBar)
    assert "close: Input should be a finite number" in items[1].reason
    assert not isinstance(items[2], BadBar)


TICKS = """\
symbol,ts,price
X.HK,2026-01-14T10:00:00+08:00,108
X.HK,2026-01-14T10:01:00+08:00,111
X.HK,2026-01-14T10:02:00+08:00,109
"""


def test_backtest_with_history_judges_the_first_tick_against_the_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks, bars = tmp_path / "ticks.csv", tmp_path / "bars.csv"
    ticks.write_text(TICKS)
    bars.write_text(
        "symbol,date,high,close\n"
        "X.HK,2025-06-02,110,100\n"  # the all-time high before the ticks
        "X.HK,2026-01-13,105,104\n"
        "X.HK,2026-01-14,200,150\n"  # the first tick's date: ticks are the truth (overlap)
    )
    assert main(["backtest", str(ticks)]) == 0
    without = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [s["price"] for s in without] == [111.0]  # 108 was only a baseline

    assert main(["backtest", str(ticks), "--history", str(bars)]) == 0
    out, err = capsys.readouterr()
    signals = [json.loads(line) for line in out.splitlines()]
    # 108 is below June's 110 (inside the 52-week window too): nothing. 111 beats that
    # bar's high, dated 2025-06-02 00:00 local time.
    assert [(s["price"], s["window"]) for s in signals] == [(111.0, "all_time")]
    assert signals[0]["previous_high"] == 110.0
    assert signals[0]["previous_high_ts"] == "2025-06-02T00:00:00+08:00"
    counts = summary_counts(err, "summary:")
    assert (counts["bars"], counts["bad"], counts["overlap"]) == (3, 0, 1)


def test_the_first_tick_with_history_can_itself_be_a_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks, bars = tmp_path / "ticks.csv", tmp_path / "bars.jsonl"
    ticks.write_text(TICKS)
    bars.write_text(
        '{"symbol":"X.HK","date":"2024-01-02","high":120,"close":100}\n'
        '{"symbol":"X.HK","date":"2026-01-13","high":105,"close":104}\n'
    )
    assert main(["backtest", str(ticks), "--history", str(bars)]) == 0
    signals = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # 108: above everything in the last 365 local dates (105), below 2024's 120
    assert [(s["price"], s["window"], s["previous_high"]) for s in signals] == [
        (108.0, "52w", 105.0),
        (111.0, "52w", 108.0),  # the first signal of the date was 108: 111 >= 108 * 1.01
    ]


def test_strict_covers_the_history_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ticks, bars = tmp_path / "ticks.csv", tmp_path / "bars.csv"
    ticks.write_text(TICKS)
    bars.write_text("symbol,date,high,close\nX.HK,2025-06-02,90,100\n")
    assert main(["backtest", str(ticks), "--history", str(bars), "--strict"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{bars}:2: bad bar: close 100 is above high 90" in err
