"""The demo data set and its backtest (with its history), pinned: the README's story.

If the generator or the contract changes on purpose, `make demo-data` regenerates the
ticks, the bars and the golden file in one step; then review the diff.
"""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from schemas.signals import (
    SIGNAL_ADAPTER,
    AhPremium,
    IndexDivergence,
    LimitHit,
    PriceMove,
    RecordHigh,
    VolumeSpike,
)
from services.backtest.run import Summary, run_backtest
from services.detection.rules import Rules
from tests.support.services import run_cli
from tests.support.summary import summary_counts

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "deploy" / "demo"
GOLDEN = Path(__file__).parents[1] / "golden" / "demo_signals.jsonl"
REGENERATE = (
    "the committed demo data differ from what deploy/demo/generate.py writes; if the generator "
    "changed on purpose, run `make demo-data` (it rewrites ticks, bars and the golden file)"
)
REFRESH = (
    "the backtest of the demo no longer gives tests/unit/golden/demo_signals.jsonl; if the "
    "signal contract or the detectors changed on purpose, run `make demo-data` (it "
    "regenerates the data and the golden file: `marketsignal backtest deploy/demo/ticks.csv "
    "--config deploy/demo/rules.toml --history deploy/demo/bars.csv`), check the story in "
    "deploy/demo/README.md still holds, and review the diff"
)


def backtest(path: Path) -> tuple[list[str], Summary]:
    out = io.BytesIO()
    summary = run_backtest(
        path, Rules.load(DEMO / "rules.toml"), out, io.StringIO(), history=DEMO / "bars.csv"
    )
    return out.getvalue().decode().splitlines(), summary


def test_generator_is_deterministic_and_matches_the_committed_files(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(DEMO / "generate.py"),
            str(tmp_path / "t.csv"),
            "--jsonl",
            str(tmp_path / "t.jsonl"),
            "--bars",
            str(tmp_path / "b.csv"),
        ],
        check=True,
    )
    assert (tmp_path / "b.csv").read_bytes() == (DEMO / "bars.csv").read_bytes(), REGENERATE
    assert (tmp_path / "t.csv").read_bytes() == (DEMO / "ticks.csv").read_bytes(), REGENERATE
    assert (tmp_path / "t.jsonl").read_bytes() == (DEMO / "ticks.jsonl").read_bytes(), REGENERATE


def test_backtest_of_the_demo_matches_the_golden_file() -> None:
    lines, summary = backtest(DEMO / "ticks.csv")
    assert (summary.malformed, summary.late) == (0, 0)
    assert (summary.bars, summary.bad_bars, summary.overlap) == (2851, 0, 0)
    assert lines == GOLDEN.read_text().splitlines(), REFRESH


def test_csv_and_jsonl_inputs_give_identical_output() -> None:
    csv_lines, _ = backtest(DEMO / "ticks.csv")
    jsonl_lines, summary = backtest(DEMO / "ticks.jsonl")
    assert summary.lines == 64_857
    assert (summary.malformed, summary.late) == (0, 0)
    assert jsonl_lines == csv_lines


def test_the_story_zhipu_record_and_the_star_hstech_divergence() -> None:
    signals = [SIGNAL_ADAPTER.validate_json(line) for line in GOLDEN.read_text().splitlines()]
    zhipu = [s for s in signals if isinstance(s, RecordHigh) and s.symbol == "2513.HK"]
    assert len(zhipu) > 20
    # With the history loaded, the first morning's prices are no records: every other
    # symbol peaked in its bars, and the only other high is 600519.SH's 52-week one (its
    # all-time high is from November 2024, more than 52 weeks back), besides the STAR
    # newcomer's all-time highs (its only bar is its offer price).
    others = [
        s for s in signals if isinstance(s, RecordHigh) and s.symbol not in ("2513.HK", "688795.SH")
    ]
    assert [(s.symbol, s.window) for s in others] == [("600519.SH", "52w")]
    assert all(s.window == "all_time" for s in zhipu)
    record = zhipu[-1]
    assert record.price == 496.0
    assert record.ts.date() == date(2026, 2, 13)
    assert record.change_pct == pytest.approx((496.0 / record.previous_high - 1) * 100)
    # +320% from the debut (the first tick of 2513.HK, on its listing day).
    ticks = [
        line.split(",")
        for line in (DEMO / "ticks.csv").read_text().splitlines()
        if line.startswith("2513.HK,")
    ]
    assert ticks[0][1].startswith("2026-01-08")
    assert 4.1 < 496.0 / float(ticks[0][2]) < 4.3
    # 13 February: a 23.4% jump from the previous close, and 496.00 is the day's high.
    prev_close = float([t for t in ticks if t[1].startswith("2026-02-12")][-1][2])
    assert round((496.0 / prev_close - 1) * 100, 1) == 23.4
    assert max(float(t[2]) for t in ticks if t[1].startswith("2026-02-13")) == 496.0
    divergences = [s for s in signals if isinstance(s, IndexDivergence)]
    opened = [s for s in divergences if s.phase == "open"]
    assert opened, "the STAR 50 / HSTECH divergence must open"
    assert opened[0].pair == "000688.SH/HSTECH.HK"
    assert opened[0].direction == "a_over_b"
    assert opened[0].spread_pp >= 10.0
    assert (opened[0].ts.year, opened[0].ts.month) == (2026, 2)
    assert opened[0].return_a_pct > 0 > opened[0].return_b_pct


def test_the_story_day_moves() -> None:
    signals = [SIGNAL_ADAPTER.validate_json(line) for line in GOLDEN.read_text().splitlines()]
    # Zhipu's +23.4% day crosses 5, 10 and 20% on separate ticks, on triple volume.
    zhipu = [
        s
        for s in signals
        if isinstance(s, PriceMove | VolumeSpike)
        and s.symbol == "2513.HK"
        and s.ts.date() == date(2026, 2, 13)
    ]
    moves = [s for s in zhipu if isinstance(s, PriceMove)]
    assert [(s.direction, s.level_pct) for s in moves] == [("up", 5.0), ("up", 10.0), ("up", 20.0)]
    assert len({s.ts for s in moves}) == 3
    assert moves[0].previous_close_date == "2026-02-12"
    assert [s.multiple for s in zhipu if isinstance(s, VolumeSpike)] == [2.0]
    # The STAR newcomer: +233% on its first day over its offer price, no limit for five
    # days, then its 20% limit-up seals, breaks and re-seals on day 6.
    newcomer = [
        s for s in signals if isinstance(s, PriceMove | LimitHit) and s.symbol == "688795.SH"
    ]
    first = newcomer[0]
    assert isinstance(first, PriceMove)
    assert (first.ts.date(), first.level_pct, first.previous_close) == (
        date(2026, 1, 19),
        20.0,
        30.0,
    )
    assert first.change_pct > 100
    hits = [s for s in newcomer if isinstance(s, LimitHit)]
    assert [(s.ts.date(), s.direction, s.phase, s.seals) for s in hits] == [
        (date(2026, 1, 26), "up", "sealed", 1),
        (date(2026, 1, 26), "up", "opened", 1),
        (date(2026, 1, 26), "up", "sealed", 2),
    ]
    assert hits[0].limit_pct == 20.0
    assert any(
        isinstance(s, PriceMove) and s.level_pct == 20.0 and s.ts.date() < date(2026, 1, 26)
        for s in newcomer[1:]
    ), "a 20% move inside the no-limit days"
    # A main-board stock seals limit-down once, and stays sealed.
    down = [s for s in signals if isinstance(s, LimitHit) and s.symbol == "601127.SH"]
    assert [(s.ts.date(), s.direction, s.phase, s.limit_pct) for s in down] == [
        (date(2026, 2, 5), "down", "sealed", 10.0)
    ]
    # No other symbol hits a limit.
    assert {s.symbol for s in signals if isinstance(s, LimitHit)} == {"688795.SH", "601127.SH"}


def test_the_story_smic_a_h_premium_crosses_its_threshold_a_few_times() -> None:
    signals = [SIGNAL_ADAPTER.validate_json(line) for line in GOLDEN.read_text().splitlines()]
    ah = [s for s in signals if isinstance(s, AhPremium)]
    rule = Rules.load(DEMO / "rules.toml").ah[0]
    assert {s.pair for s in ah} == {"688981.SH/0981.HK"} == {rule.name}
    phases = [s.phase for s in ah]
    # open, close, open, ... : it crosses 30% at least three times and closes in between
    assert phases.count("open") >= 3
    assert phases == ["open", "close"] * (len(ah) // 2) + ["open"] * (len(ah) % 2)
    for s in ah:
        assert s.premium_pct == pytest.approx(100 * (s.price_a * s.fx / s.price_h - 1))
        if s.phase == "open":
            assert s.premium_pct >= rule.threshold_pct
        else:
            assert s.premium_pct < rule.threshold_pct * rule.hysteresis
    # the synthetic CNYHKD series stays in its labelled 1.08-1.10 band
    fx = [
        float(line.split(",")[2])
        for line in (DEMO / "ticks.csv").read_text().splitlines()
        if line.startswith("CNYHKD,")
    ]
    assert len(fx) > 1000
    assert 1.08 <= min(fx) < max(fx) <= 1.10


def test_the_cli_prints_the_same_lines() -> None:
    proc = run_cli(
        "backtest",
        str(DEMO / "ticks.csv"),
        "--config",
        str(DEMO / "rules.toml"),
        "--history",
        str(DEMO / "bars.csv"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == GOLDEN.read_text().splitlines(), REFRESH
    counts = summary_counts(proc.stderr, "summary:")
    assert (counts["malformed"], counts["late"]) == (0, 0)
