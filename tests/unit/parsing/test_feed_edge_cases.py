"""The contract's input edge cases (docs/signals.md, "Ticks"), each through the backtest.

Booleans are malformed prices, line numbers are physical, a CSV may start with a BOM,
NaN/Infinity are named by field, short and long CSV rows, case-sensitive suffixes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from schemas.tick import Tick
from schemas.zones import ExchangeZones
from services.backtest.run import run_backtest
from services.detection.rules import Rules
from services.parsing.feed import read_records, read_stream


def backtest(path: Path) -> tuple[list[dict[str, object]], list[str]]:
    out, err = io.BytesIO(), io.StringIO()
    run_backtest(path, Rules(divergence=()), out, err, progress=False)
    signals = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    diagnostics = [line for line in err.getvalue().splitlines() if not line.startswith("summary")]
    return signals, diagnostics


def line_numbers(diagnostics: list[str]) -> list[int]:
    return [int(d.split(": ")[0].rsplit(":", 1)[1]) for d in diagnostics]


def test_a_json_boolean_price_is_malformed_not_one(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"symbol":"Z","ts":"2026-01-05T10:00:00Z","price":0.5}\n'
        '{"symbol":"Z","ts":"2026-01-05T10:00:01Z","price":true}\n'
        '{"symbol":"Z","ts":"2026-01-05T10:00:02Z","price":0.6,"volume":false}\n'
    )
    signals, diagnostics = backtest(path)
    assert signals == []  # `true` read as 1.0 would be a record high over 0.5
    assert line_numbers(diagnostics) == [2, 3]
    assert "malformed: price: must be a number, not a boolean" in diagnostics[0]
    assert "volume: must be a number, not a boolean" in diagnostics[1]


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_line_numbers_are_physical_after_leading_blank_lines(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t.{suffix}"
    if suffix == "jsonl":
        body = '\n\n{"symbol":"Z","ts":"2026-01-05T10:00:00Z","price":1}\n\n{"symbol":"Z"}\n'
        bad_line = 5
    else:
        body = "\nsymbol,ts,price\nZ,2026-01-05T10:00:00Z,1\n\nZ,2026-01-05T10:00:01Z,-1\n"
        bad_line = 5
    path.write_text(body)
    _, diagnostics = backtest(path)
    assert line_numbers(diagnostics) == [bad_line]


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(
        "\ufeffsymbol,ts,price\nZ,2026-01-05T10:00:00Z,1\nZ,2026-01-05T10:00:01Z,2\n".encode()
    )
    signals, diagnostics = backtest(path)
    assert diagnostics == []
    assert [s["price"] for s in signals] == [2.0]
    # the same through standard input (no file suffix to go by)
    records = list(read_stream(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [r.line for r in records] == [2, 3]


@pytest.mark.parametrize(("token", "shown"), [("NaN", "nan"), ("Infinity", "inf")])
def test_non_finite_json_prices_are_named_by_field(tmp_path: Path, token: str, shown: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(f'{{"symbol":"Z","ts":"2026-01-05T10:00:00Z","price":{token}}}\n')
    _, diagnostics = backtest(path)
    assert len(diagnostics) == 1
    assert "not valid JSON" not in diagnostics[0]
    assert "malformed: price: Input should be a finite number" in diagnostics[0]
    assert shown in diagnostics[0]


def test_short_and_long_csv_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "symbol,ts,price,volume,kind\n"
        "Z,2026-01-05T10:00:00Z,1,5,trade\n"  # 2: complete
        "Z,2026-01-05T10:00:01Z,2\n"  # 3: short, optional volume/kind defaulted
        "Z,2026-01-05T10:00:02Z\n"  # 4: short, lacks the required price
        "Z,2026-01-05T10:00:03Z,3,1,trade,extra\n"  # 5: long: malformed
    )
    signals, diagnostics = backtest(path)
    assert [s["price"] for s in signals] == [2.0]
    assert line_numbers(diagnostics) == [4, 5]
    assert "malformed: price: missing" in diagnostics[0]
    assert "6 cells, but the header names 5 columns" in diagnostics[1]
    records = list(read_records(path))
    assert records[1].fields == ["Z", "2026-01-05T10:00:01Z", "2", "", ""]


def test_suffixes_match_case_sensitively_longest_first() -> None:
    zones = ExchangeZones({".HK": "Asia/Hong_Kong", ".X.HK": "Asia/Tokyo"})
    assert str(zones.zone_for("0700.HK")) == "Asia/Hong_Kong"
    assert str(zones.zone_for("0700.hk")) == "UTC"
    assert str(zones.zone_for("7203.X.HK")) == "Asia/Tokyo"
    tick = Tick.model_validate(
        {"symbol": "0700.hk", "ts": "2026-01-05T23:30:00", "price": 1},
        context={"zones": zones},
    )
    assert tick.ts.isoformat() == "2026-01-05T23:30:00+00:00"  # naive time read as UTC
