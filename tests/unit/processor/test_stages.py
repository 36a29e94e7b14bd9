"""The processor's stages without a broker: same signals as the engine, replay-safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.dead_letter import RAW_MAX
from schemas.tick import Tick
from services.detection.divergence import PairTracker
from services.detection.engine import Engine
from services.processor.outputs import Record
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage
from tests.unit.stage_helpers import (
    RULES,
    Tables,
    as_records,
    engine_signals,
    make_ticks,
    per_subject,
    run_stages,
)


def test_stages_match_the_engine_signal_for_signal() -> None:
    ticks = make_ticks(3000)
    tables = Tables()
    signals, _ = run_stages(
        as_records(ticks), tables, SymbolStage(RULES, "ticks"), PairStage(RULES)
    )
    # Flush what the pair stage still holds, as the engine's caller would at the end.
    state = tables.pairs["AAA.SH/BBB.HK"]
    pair = PairStage(RULES)._state("AAA.SH/BBB.HK", state).tracker
    assert isinstance(pair, PairTracker)
    signals += [s.model_dump_json() for s in pair.flush()]
    engine = Engine(RULES)
    expected = engine_signals(ticks) + [s.model_dump_json() for s in engine.flush()]
    # Per subject order is the contract; across subjects the pair stage comes later.
    assert per_subject(signals) == per_subject(expected)
    assert any('"index_divergence"' in s for s in signals)
    assert any('"record_high"' in s for s in signals)


def test_replayed_batch_changes_nothing_and_resends_nothing_new() -> None:
    ticks = make_ticks(400, seed=3)
    records = as_records(ticks)
    tables = Tables()
    stage, pairs = SymbolStage(RULES, "ticks"), PairStage(RULES)
    first, _ = run_stages(records[:300], tables, stage, pairs)
    # A crash after the table write but before the offset commit: the batch comes again.
    again, out = run_stages(records[200:300], tables, SymbolStage(RULES, "ticks"), PairStage(RULES))
    assert again == []
    assert out.forwards == []
    rest, _ = run_stages(records[300:], tables, SymbolStage(RULES, "ticks"), PairStage(RULES))
    straight, _ = run_stages(records, Tables(), SymbolStage(RULES, "ticks"), PairStage(RULES))
    assert per_subject(first + rest) == per_subject(straight)


def test_pair_stage_drops_re_sent_forwards() -> None:
    ticks = [t for t in make_ticks(600, seed=5) if t.symbol != "CCC.HK"]
    out = SymbolStage(RULES, "ticks").process(as_records(ticks), {}.get, 0.0)
    forwards = [Record(p.encode(), v, 0, i) for i, (p, v) in enumerate(out.forwards)]
    once = PairStage(RULES).process(forwards, {}.get, now=0.0)
    table: dict[str, Any] = {}
    stage = PairStage(RULES)
    a = stage.process(forwards[:250], table.get, now=0.0)
    table.update(a.states)
    # The symbol stage replayed and re-sent records 150.. (with the same source offsets).
    b = stage.process(forwards[150:], table.get, now=0.0)
    assert [s.model_dump_json() for s in a.signals + b.signals] == [
        s.model_dump_json() for s in once.signals
    ]


def test_bad_records_go_to_dead_letters_with_reasons() -> None:
    good = Tick(symbol="CCC.HK", ts=datetime(2026, 1, 5, 2, 0, tzinfo=UTC), price=10.0)
    late = good.model_copy(update={"ts": good.ts - timedelta(seconds=60)})
    records = [
        Record(b"CCC.HK", good.model_dump_json().encode(), 2, 10),
        Record(
            b"CCC.HK", b'{"symbol":"CCC.HK","ts":"2026-01-05T10:00:01+08:00","price":-1}', 2, 11
        ),
        Record(b"CCC.HK", b"not json", 2, 12),
        Record(b"OTHER", good.model_dump_json().encode(), 2, 13),
        Record(b"CCC.HK", late.model_dump_json().encode(), 2, 14),
    ]
    out = SymbolStage(RULES, "ticks").process(records, {}.get, 0.0)
    reasons = [(d.reason, d.field, d.source) for d in out.dead]
    assert reasons == [
        ("malformed", "price", "ticks[2]@11"),
        ("malformed", None, "ticks[2]@12"),
        ("malformed", "key", "ticks[2]@13"),
        ("late", "ts", "ticks[2]@14"),
    ]
    assert out.dead[1].raw == "not json"
    assert "60s before" in out.dead[3].detail
    assert out.states["CCC.HK"]["o"] == 14


def test_poison_on_the_pair_feed_is_dead_lettered_not_fatal() -> None:
    pair = b"AAA.SH/BBB.HK"
    good = b'{"type":"tick","symbol":"AAA.SH","ts_us":1767578400000000,"price":10.0,'
    good += b'"src_partition":0,"src_offset":1}'
    records = [
        Record(pair, b"\xff not json", 1, 1),
        Record(pair, b'{"type":"tick","symbol":7,"ts_us":"x","price":1}', 1, 2),
        Record(pair, good.replace(b"AAA.SH", b"ZZZ.HK"), 1, 3),
        Record(pair, b'{"type":"tick","price":1e400}', 1, 4),
        Record(pair, b"x" * (RAW_MAX + 10), 1, 5),
        Record(b"no/such-pair", good, 1, 6),  # a pair no longer configured: moot, not poison
        Record(pair, good, 1, 7),
    ]
    stage = PairStage(RULES, "by_pair")
    out = stage.process(records, {}.get, now=0.0)
    assert [(d.reason, d.source) for d in out.dead] == [
        ("malformed", f"by_pair[1]@{n}") for n in range(1, 6)
    ]
    assert out.dead[2].field == "symbol"
    assert out.dead[4].raw.endswith(f"[truncated: {RAW_MAX + 10} bytes]")
    assert len(out.dead[4].raw) < RAW_MAX + 100
    assert stage.unknown == 1
    assert out.evaluated == 1
