"""`marketsignal backtest`: output, diagnostics with line numbers, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from schemas.level import Level
from services.backtest.levels import read_levels, write_levels
from services.backtest.run import run_backtest
from services.cli import main
from services.detection.rules import Rules
from tests.support.services import run_cli
from tests.support.summary import summary_counts

HEADER = "symbol,ts,price,volume,kind\n"
LINES = [
    "2513.HK,2026-02-12T10:00:00+08:00,400,100,trade",  # 2: baseline
    "2513.HK,2026-02-13T10:00:00+08:00,410,100,trade",  # 3: all-time high
    "2513.HK,2026-02-13T10:00:01+08:00,-1,100,trade",  # 4: malformed price
    "2513.HK,2026-02-13T09:59:00+08:00,420,100,trade",  # 5: late (60 s)
    "BAD SYMBOL,2026-02-13T10:00:02+08:00,1,0,trade",  # 6: malformed symbol
    "2513.HK,2026-02-13T10:01:00+08:00,496,100,trade",  # 7: all-time high
    "only,three",  # 8: a short row: lacks the required price
]


@pytest.fixture
def ticks(tmp_path: Path) -> Path:
    path = tmp_path / "ticks.csv"
    path.write_text(HEADER + "\n".join(LINES) + "\n", encoding="utf-8")
    return path


def test_signals_on_stdout_and_every_bad_line_on_stderr(
    ticks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", str(ticks)]) == 0
    out, err = capsys.readouterr()
    signals = [json.loads(line) for line in out.splitlines()]
    assert [(s["price"], s["window"]) for s in signals] == [
        (410.0, "all_time"),
        (496.0, "all_time"),
    ]
    assert signals[1]["previous_high"] == 410.0
    assert signals[1]["ts"] == "2026-02-13T10:01:00+08:00"
    diagnostics = [line for line in err.splitlines() if not line.startswith("summary")]
    assert [d.split(": ")[0].rsplit(":", 1)[1] for d in diagnostics] == ["4", "5", "6", "8"]
    assert "malformed: price" in diagnostics[0]
    assert "late: ts is 60s before the latest accepted ts" in diagnostics[1]
    assert "malformed: symbol" in diagnostics[2]
    assert "price: missing" in diagnostics[3]
    counts = summary_counts(err, "summary:")
    assert [counts[k] for k in ("ticks", "accepted", "malformed", "late")] == [7, 3, 3, 1]


def test_strict_stops_at_the_first_bad_line_with_exit_2(
    ticks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", str(ticks), "--strict"]) == 2
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1  # the signal before the bad line was printed
    assert "ticks.csv:4: malformed" in err
    assert "stopped (--strict)" in err


def test_bad_rules_file_and_missing_input_exit_2(
    ticks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[ticks]\nallowed_lateness = 3\n")
    assert main(["backtest", str(ticks), "--config", str(rules)]) == 2
    assert "unknown key" in capsys.readouterr().err
    assert main(["backtest", str(tmp_path / "none.csv")]) == 2


def test_a_header_without_price_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("symbol,ts,volume\nA,1,2\n")
    assert main(["backtest", str(path)]) == 2
    assert "missing price" in capsys.readouterr().err


def test_csv_columns_in_any_order_with_extras(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "venue,price,symbol,ts\nx,10,A,1700000000000\nx,11,A,1700000001000\n", encoding="utf-8"
    )
    out = io.BytesIO()
    summary = run_backtest(path, Rules(divergence=()), out, io.StringIO())
    assert summary.accepted == 2
    assert json.loads(out.getvalue())["price"] == 11.0


def test_progress_bar_only_when_asked(ticks: Path) -> None:
    err = io.StringIO()
    run_backtest(ticks, Rules(), io.BytesIO(), err, progress=True)
    assert "\r[" in err.getvalue()
    quiet = io.StringIO()
    run_backtest(ticks, Rules(), io.BytesIO(), quiet, progress=None)  # not a terminal
    assert "\r[" not in quiet.getvalue()


def test_schemas_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "export", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.schema.json"))) == 6
    assert "tick.schema.json" in capsys.readouterr().out


def test_backtest_reads_standard_input(ticks: Path) -> None:
    proc = run_cli("backtest", "-", input=ticks.read_text(encoding="utf-8"))
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["price"] for line in proc.stdout.splitlines()] == [410.0, 496.0]
    assert "<stdin>:4: malformed: price" in proc.stderr
    counts = summary_counts(proc.stderr, "summary:")
    assert [counts[k] for k in ("ticks", "accepted", "malformed", "late")] == [7, 3, 3, 1]


def test_levels_fire_in_the_contract_s_order_with_no_subscription(
    ticks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    levels = tmp_path / "levels.jsonl"
    levels.write_text(
        '{"level_id": "z405", "symbol": "2513.HK", "above": 405}\n'
        "\n"
        '{"level_id": "a410", "symbol": "2513.HK", "above": 410, '
        '"subscription_id": "0123456789abcdef"}\n'
        '{"level_id": "b450", "symbol": "2513.HK", "below": 450, "note": "never"}\n'
        '{"level_id": "c", "symbol": "0700.HK", "above": 1}\n',
        encoding="utf-8",
    )
    assert main(["backtest", str(ticks), "--levels", str(levels)]) == 0
    out, err = capsys.readouterr()
    signals = [json.loads(line) for line in out.splitlines()]
    # 400 -> 410: the record high first, then both levels by level_id; the late 420 is
    # not p; 410 -> 496 crosses nothing (410 was reached, 450 is below).
    assert [(s["kind"], s.get("level_id")) for s in signals] == [
        ("record_high", None),
        ("price_level", "a410"),
        ("price_level", "z405"),
        ("record_high", None),
    ]
    assert {s["subscription_id"] for s in signals[1:3]} == {None}
    assert (signals[1]["previous_price"], signals[1]["level"]) == (400.0, 410.0)
    assert summary_counts(err, "summary:")["price_level"] == 2


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"level_id": "a", "symbol": "2513.HK"}\n', "levels.jsonl:1: (line)"),
        ('{"level_id": "a", "symbol": "X", "above": 1}\n' * 2, "levels.jsonl:2: level_id 'a'"),
        ('\n{"level_id": "a", "symbol": "X", "above": "1"}\n', "levels.jsonl:2: above"),
        ("not json\n", "levels.jsonl:1"),
    ],
)
def test_a_bad_levels_file_stops_before_any_tick_naming_the_line(
    ticks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, named: str
) -> None:
    levels = tmp_path / "levels.jsonl"
    levels.write_text(text, encoding="utf-8")
    assert main(["backtest", str(ticks), "--levels", str(levels)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert named in err


def test_a_written_levels_file_reads_back_without_its_subscriptions(tmp_path: Path) -> None:
    levels = [
        Level(level_id="b", symbol="2513.HK", above=500.0, subscription_id="0" * 16, note="x"),
        Level(level_id="a", symbol="0700.HK", below=300.0),
    ]
    path = tmp_path / "levels.jsonl"
    write_levels(path, levels)
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == [
        {"level_id": "b", "symbol": "2513.HK", "above": 500.0, "below": None},
        {"level_id": "a", "symbol": "0700.HK", "above": None, "below": 300.0},
    ]
    book = read_levels(path)
    assert [
        (lv.level_id, lv.symbol, lv.direction, lv.price, lv.subscription_id) for lv in book.levels()
    ] == [
        ("a", "0700.HK", "below", 300.0, None),
        ("b", "2513.HK", "above", 500.0, None),
    ]
