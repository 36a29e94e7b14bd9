"""Daily bars through the processor's history stage, before and after the ticks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from schemas.bar import Bar
from schemas.signals import SIGNAL_ADAPTER
from schemas.tick import Tick
from services.detection.engine import Engine
from services.processor.history_stage import HistoryStage
from services.processor.outputs import Record
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage
from tests.unit.stage_helpers import (
    RULES,
    Tables,
    as_records,
    engine_signals,
    forward,
    make_ticks,
    per_subject,
    run_stages,
)


def make_bars(seed: int = 11) -> list[Bar]:
    rng = random.Random(seed)
    out = []
    for symbol, level in (("AAA.SH", 100.0), ("BBB.HK", 100.0), ("CCC.HK", 50.0)):
        day = datetime(2024, 11, 1).date()
        for _ in range(300):
            day += timedelta(days=rng.choice([1, 1, 1, 3]))
            close = round(level * (1 + rng.gauss(0, 0.05)), 2)
            out.append(Bar(symbol=symbol, date=day, high=round(close * 1.01, 2), close=close))
    return out


def test_history_then_ticks_through_the_stages_match_the_engine() -> None:
    bars = make_bars()
    ticks = make_ticks(2000)
    engine = Engine(RULES)
    for bar in bars:
        engine.add_bar(bar.symbol, bar.date.toordinal(), bar.high, bar.close)
    want = engine_signals(ticks, engine)
    assert engine.overlapping_bars() > 0  # the bars run past the first ticks

    tables = Tables()
    history = HistoryStage(RULES, "history")
    symbol_stage, pair_stage = SymbolStage(RULES, "ticks"), PairStage(RULES)
    bar_records = [
        Record(b.symbol.encode(), b.model_dump_json().encode(), 0, i) for i, b in enumerate(bars)
    ]
    # half the bars, the other half and the whole file again (loading twice changes nothing)
    got: list[str] = []
    for chunk in (bar_records[::2], bar_records[1::2], bar_records):
        out = history.process(chunk, tables.symbols.get, 0.0)
        tables.symbols.update(out.states)
        pair_out = forward(out, tables, pair_stage, partition=1)
        assert out.signals == []  # bars are never signals
        assert pair_out.signals == []
    assert out.bars["duplicate"] == len(bars)
    signals, _ = run_stages(as_records(ticks), tables, symbol_stage, pair_stage)
    got.extend(signals)
    assert per_subject(got) == per_subject(want)
    assert any("AAA.SH/BBB.HK" in line for line in want)


def test_bars_after_ticks_count_only_before_the_first_tick() -> None:
    from schemas.bar import Bar

    tables = Tables()
    ticks = [
        Tick(symbol="CCC.HK", ts=datetime(2026, 1, 5, 2, 0, tzinfo=UTC), price=10.0),
        Tick(symbol="CCC.HK", ts=datetime(2026, 1, 6, 2, 0, tzinfo=UTC), price=11.0),
    ]
    symbol_stage = SymbolStage(RULES, "ticks")
    run_stages(as_records(ticks[:1]), tables, symbol_stage, PairStage(RULES))
    late_bars = [
        Bar(symbol="CCC.HK", date=datetime(2026, 1, 2).date(), high=10.5, close=10.0),
        Bar(symbol="CCC.HK", date=datetime(2026, 1, 5).date(), high=99.0, close=90.0),
    ]
    out = HistoryStage(RULES, "history").process(
        [Record(b"CCC.HK", b.model_dump_json().encode(), 0, i) for i, b in enumerate(late_bars)],
        tables.symbols.get,
        0.0,
    )
    assert dict(out.bars) == {"applied": 1, "overlap": 1}
    tables.symbols.update(out.states)
    signals, _ = run_stages(
        [Record(b"CCC.HK", ticks[1].model_dump_json().encode(), 0, 1)],
        tables,
        symbol_stage,
        PairStage(RULES),
    )
    [signal] = [SIGNAL_ADAPTER.validate_json(s) for s in signals]
    # 11 beats the first tick (10) and the 2 January bar (10.5); the 99 of 5 January
    # (the first tick's date) was ignored: ticks are the truth on their dates
    assert (signal.previous_high, signal.previous_high_ts.isoformat()) == (
        10.5,
        "2026-01-02T00:00:00+08:00",
    )
