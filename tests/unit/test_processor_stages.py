"""The processor's stages without a broker: same signals as the engine, replay-safe."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.dead_letter import RAW_MAX
from schemas.signals import SIGNAL_ADAPTER
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import DivergenceRule, Rules
from services.processor.outputs import Outputs, Record
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage

RULES = Rules(divergence=(DivergenceRule(a="AAA.SH", b="BBB.HK", threshold_pp=2.0),))


def make_ticks(n: int, seed: int = 7) -> list[Tick]:
    rng = random.Random(seed)
    prices = {"AAA.SH": 100.0, "BBB.HK": 100.0, "CCC.HK": 50.0}
    t = datetime(2025, 12, 29, 2, 0, tzinfo=UTC)
    out = []
    for _ in range(n):
        symbol = rng.choice(list(prices))
        prices[symbol] *= 1 + rng.gauss(0.001 if symbol == "AAA.SH" else 0, 0.01)
        t += timedelta(seconds=rng.randint(1, 3600))
        out.append(Tick(symbol=symbol, ts=t, price=round(prices[symbol], 4)))
    return out


class Tables:
    def __init__(self) -> None:
        self.symbols: dict[str, Any] = {}
        self.pairs: dict[str, Any] = {}


def run_stages(
    records: list[Record], tables: Tables, symbol_stage: SymbolStage, pair_stage: PairStage
) -> tuple[list[str], Outputs]:
    out = symbol_stage.process(records, tables.symbols.get, 0.0)
    tables.symbols.update(out.states)
    forwarded = [
        Record(pair.encode(), payload, 0, i) for i, (pair, payload) in enumerate(out.forwards)
    ]
    pair_out = pair_stage.process(forwarded, tables.pairs.get, now=0.0)
    tables.pairs.update(pair_out.states)
    return [s.model_dump_json() for s in out.signals + pair_out.signals], out


def engine_signals(ticks: list[Tick]) -> list[str]:
    engine = Engine(RULES)
    got: list[str] = []
    for tick in ticks:
        result = engine.process(tick)
        assert not isinstance(result, Late)
        got.extend(s.model_dump_json() for s in result)
    return got


def per_subject(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in lines:
        subject = SIGNAL_ADAPTER.validate_json(line).subject
        out.setdefault(subject, []).append(line)
    return out


def as_records(ticks: list[Tick]) -> list[Record]:
    return [
        Record(t.symbol.encode(), t.model_dump_json().encode(), 0, i) for i, t in enumerate(ticks)
    ]


def test_stages_match_the_engine_signal_for_signal() -> None:
    ticks = make_ticks(3000)
    tables = Tables()
    signals, _ = run_stages(
        as_records(ticks), tables, SymbolStage(RULES, "ticks"), PairStage(RULES)
    )
    # Flush what the pair stage still holds, as the engine's caller would at the end.
    from services.detection.divergence import PairTracker

    state = tables.pairs["AAA.SH/BBB.HK"]
    pair = PairStage(RULES)._tracker("AAA.SH/BBB.HK", state)
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


def test_a_h_listings_ride_the_pair_stage_apart_from_a_pair_of_the_same_symbols() -> None:
    from services.detection.ah_premium import AhTracker
    from services.detection.rules import AhRule
    from services.processor.outputs import ah_key

    rules = Rules(
        divergence=(DivergenceRule(a="AAA.SH", b="BBB.HK", threshold_pp=2.0),),
        ah=(
            # the same two symbols as the divergence pair: a separate key and state
            AhRule(a="AAA.SH", h="BBB.HK", fx_rate=1.0, threshold_pct=3.0),
            AhRule(a="AAA.SH", h="CCC.HK", fx="FX", threshold_pct=3.0, hysteresis=0.5),
        ),
    )
    rng = random.Random(11)
    prices = {"AAA.SH": 100.0, "BBB.HK": 100.0, "CCC.HK": 100.0, "FX": 1.09}
    t = datetime(2025, 12, 29, 2, 0, tzinfo=UTC)
    ticks = []
    for _ in range(2000):
        symbol = rng.choice(list(prices))
        prices[symbol] *= 1 + rng.gauss(0, 0.002 if symbol == "FX" else 0.01)
        t += timedelta(seconds=rng.randint(1, 3600))
        ticks.append(Tick(symbol=symbol, ts=t, price=round(prices[symbol], 4)))
    tables = Tables()
    pair_stage = PairStage(rules)
    assert sorted(pair_stage.subjects()) == sorted(
        ["AAA.SH/BBB.HK", ah_key("AAA.SH/BBB.HK"), ah_key("AAA.SH/CCC.HK")]
    )
    signals, out = run_stages(as_records(ticks), tables, SymbolStage(rules, "ticks"), pair_stage)
    assert {key for key, _ in out.forwards} == set(pair_stage.subjects())
    for key in pair_stage.subjects():
        tracker = PairStage(rules)._tracker(key, tables.pairs[key])
        assert isinstance(tracker, AhTracker) == key.startswith("ah:")
        signals += [s.model_dump_json() for s in tracker.flush()]
    engine = Engine(rules)
    expected = [s.model_dump_json() for tick in ticks for s in engine.process(tick)] + [
        s.model_dump_json() for s in engine.flush()
    ]
    assert per_subject(signals) == per_subject(expected)
    kinds = {SIGNAL_ADAPTER.validate_json(s).kind for s in signals}
    assert kinds == {"record_high", "index_divergence", "ah_premium"}
    ah_pairs = {SIGNAL_ADAPTER.validate_json(s).subject for s in signals if '"ah_premium"' in s}
    assert ah_pairs == {"AAA.SH/BBB.HK", "AAA.SH/CCC.HK"}


def test_a_heartbeat_releases_a_listing_s_held_legs_after_max_wait_s() -> None:
    from schemas.pair_feed import Heartbeat
    from services.detection.rules import AhRule
    from services.processor.outputs import ah_key

    rules = Rules(
        divergence=(),
        ah=(AhRule(a="AAA.SH", h="BBB.HK", fx="FX", threshold_pct=20.0, max_wait_s=2.0),),
    )
    t0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    ticks = [
        Tick(symbol="FX", ts=t0, price=1.1),
        Tick(symbol="BBB.HK", ts=t0, price=80.0),
        Tick(symbol="AAA.SH", ts=t0, price=100.0),  # all legs at t0: premium +37.5%, open
        Tick(symbol="BBB.HK", ts=t0 + timedelta(minutes=1), price=100.0),  # +10%: held
    ]
    out = SymbolStage(rules, "ticks").process(as_records(ticks), {}.get, 0.0)
    key = ah_key("AAA.SH/BBB.HK")
    assert [k for k, _ in out.forwards] == [key] * 4
    forwards = [Record(k.encode(), v, 0, i) for i, (k, v) in enumerate(out.forwards)]
    table: dict[str, Any] = {}
    stage = PairStage(rules)
    first = stage.process(forwards, table.get, now=100.0)
    table.update(first.states)
    assert [(s.kind, s.phase) for s in first.signals] == [("ah_premium", "open")]
    assert stage.pending() == {key: 1}  # a and fx have not reached minute 1
    beat = [Record(key.encode(), Heartbeat().model_dump_json().encode(), 0, 99)]
    early = stage.process(beat, table.get, now=101.9)
    assert early.signals == []
    late = PairStage(rules).process(beat, table.get, now=102.0)  # restored from the table
    assert [(s.phase, s.premium_pct) for s in late.signals] == [("close", pytest.approx(10.0))]
    assert late.states[key]["tracker"]["buffer"] == []


# -- history ----------------------------------------------------------------------------


def make_bars(seed: int = 11) -> list[Any]:
    from schemas.bar import Bar

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
    from services.processor.history_stage import HistoryStage

    bars = make_bars()
    ticks = make_ticks(2000)
    engine = Engine(RULES)
    for bar in bars:
        engine.add_bar(bar.symbol, bar.date.toordinal(), bar.high, bar.close)
    want: list[str] = []
    for tick in ticks:
        result = engine.process(tick)
        assert not isinstance(result, Late)
        want.extend(s.model_dump_json() for s in result)
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
        forwarded = [
            Record(pair.encode(), payload, 1, i) for i, (pair, payload) in enumerate(out.forwards)
        ]
        pair_out = pair_stage.process(forwarded, tables.pairs.get, now=0.0)
        tables.pairs.update(pair_out.states)
        assert out.signals == []  # bars are never signals
        assert pair_out.signals == []
    assert out.bars["duplicate"] == len(bars)
    signals, _ = run_stages(as_records(ticks), tables, symbol_stage, pair_stage)
    got.extend(signals)
    assert per_subject(got) == per_subject(want)
    assert any("AAA.SH/BBB.HK" in line for line in want)


def test_bars_after_ticks_count_only_before_the_first_tick() -> None:
    from schemas.bar import Bar
    from services.processor.history_stage import HistoryStage

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
