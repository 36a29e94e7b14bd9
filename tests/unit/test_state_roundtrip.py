"""Engine state survives JSON: stopping anywhere and resuming changes no output.

The processor keeps detector state in tables and restarts from it, so a run cut at any
tick, serialised with `json.dumps`, loaded back and resumed must give exactly the outputs
of the uninterrupted run: the same late verdicts, the same record highs, the same
divergence signals, including ticks still held in a pair's reorder buffer at the cut.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import DivergenceRule, RecordHighRules, Rules, TickRules

A, B, NOISE = "A.SH", "B.HK", "C"
START = datetime(2024, 12, 30, 15, 50, tzinfo=UTC)


def view(result: Late | list[Any]) -> Any:
    if isinstance(result, Late):
        return ("late", result.latest.isoformat(), result.behind_s)
    return [s.model_dump(mode="json") for s in result]


def json_state(engine: Engine) -> Any:
    state = json.loads(json.dumps(engine.to_state()))
    assert isinstance(state, dict)
    return state


def pending(engine: Engine) -> int:
    return sum(len(p["buffer"]) for p in engine.to_state()["pairs"].values())


@st.composite
def runs(draw: st.DrawFn) -> tuple[Rules, list[Tick], int]:
    lateness = draw(st.sampled_from([0, 5, 120]))
    pairs = [
        DivergenceRule(
            a=A,
            b=B,
            window="ytd",
            threshold_pp=draw(st.sampled_from([1.0, 3.0])),
            hysteresis=draw(st.sampled_from([0.5, 0.8])),
            require_opposite_signs=draw(st.booleans()),
        ),
        DivergenceRule(a=B, b=A, window=draw(st.sampled_from(["1d", "3d"])), threshold_pp=2.0),
    ]
    rules = Rules(
        ticks=TickRules(allowed_lateness_s=lateness),
        record_high=RecordHighRules(
            windows=draw(st.sampled_from([("all_time", "52w"), ("52w",)])),
            step_pct=draw(st.sampled_from([0.0, 1.0])),
        ),
        divergence=tuple(draw(st.lists(st.sampled_from(pairs), max_size=2, unique=True))),
    )
    newest = dict.fromkeys((A, B, NOISE), START)
    ticks = []
    for _ in range(draw(st.integers(1, 50))):
        sym = draw(st.sampled_from([A, B, NOISE]))
        move = draw(st.integers(0, 5))
        if move == 0:
            ts = newest[sym] - timedelta(seconds=draw(st.integers(0, lateness + 10)))
        else:
            unit = draw(st.sampled_from([1, 60, 3600, 86400]))
            ts = newest[sym] = newest[sym] + timedelta(seconds=unit * draw(st.integers(0, 20)))
        price = draw(st.sampled_from([95.0, 100.0, 101.0, 103.0, 106.0, 110.0]))
        ticks.append(Tick(symbol=sym, ts=ts, price=price, kind="index"))
    split = draw(st.integers(0, len(ticks)))
    return rules, ticks, split


def straight(rules: Rules, ticks: list[Tick]) -> tuple[list[Any], Engine]:
    engine = Engine(rules)
    outputs = [view(engine.process(t)) for t in ticks]
    outputs.append(view(engine.flush()))
    return outputs, engine


def resumed(rules: Rules, ticks: list[Tick], split: int) -> tuple[list[Any], Engine, int]:
    first = Engine(rules)
    outputs = [view(first.process(t)) for t in ticks[:split]]
    state = json_state(first)
    held = pending(first)
    second = Engine.from_state(rules, state)
    # restoring is a fixed point: the restored engine serialises to what it was given
    assert json_state(second) == state
    outputs.extend(view(second.process(t)) for t in ticks[split:])
    outputs.append(view(second.flush()))
    return outputs, second, held


@settings(max_examples=300, deadline=None)
@given(runs())
def test_json_round_trip_mid_sequence_changes_nothing(run: tuple[Rules, list[Tick], int]) -> None:
    rules, ticks, split = run
    want, straight_engine = straight(rules, ticks)
    got, resumed_engine, held = resumed(rules, ticks, split)
    event("ticks held at the split" if held else "nothing held at the split")
    assert got == want
    assert json_state(resumed_engine) == json_state(straight_engine)


def test_round_trip_with_ticks_held_in_the_reorder_buffer() -> None:
    """A pinned case: b lags, so a's ticks wait in the buffer when the state is saved."""
    rules = Rules(divergence=(DivergenceRule(a=A, b=B, window="ytd", threshold_pp=2.0),))
    t0 = datetime(2024, 12, 31, 1, 0, tzinfo=UTC)
    ticks = [
        Tick(symbol=A, ts=t0, price=100.0),
        Tick(symbol=B, ts=t0, price=100.0),
        Tick(symbol=A, ts=t0 + timedelta(minutes=1), price=104.0),
        Tick(symbol=A, ts=t0 + timedelta(minutes=2), price=101.0),
        Tick(symbol=B, ts=t0 + timedelta(minutes=3), price=100.0),
        Tick(symbol=A, ts=t0 + timedelta(minutes=4), price=100.0),
        Tick(symbol=B, ts=t0 + timedelta(minutes=5), price=100.0),
    ]
    want, _ = straight(rules, ticks)
    got, _, held = resumed(rules, ticks, 4)
    assert held == 2
    assert got == want
    # the open at minute 1 and the close at minute 2 both come out when b reaches minute 3
    phases = [s["phase"] for s in got[4]]
    assert phases == ["open", "close"]
