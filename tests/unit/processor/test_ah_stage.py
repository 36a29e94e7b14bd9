"""A-H listings through the processor's stages: their own keys and state beside the
divergence pairs, and held legs released by heartbeats."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.pair_feed import Heartbeat
from schemas.signals import SIGNAL_ADAPTER
from schemas.tick import Tick
from services.detection.ah_premium import AhTracker
from services.detection.engine import Engine
from services.detection.rules import AhRule, DivergenceRule, Rules
from services.processor.outputs import Record, ah_key
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage
from tests.unit.stage_helpers import Tables, as_records, per_subject, run_stages


def test_a_h_listings_ride_the_pair_stage_apart_from_a_pair_of_the_same_symbols() -> None:
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
        tracker = PairStage(rules)._state(key, tables.pairs[key]).tracker
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
