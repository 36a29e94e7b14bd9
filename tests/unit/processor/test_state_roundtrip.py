"""The processor's state survives a restart: stopping anywhere and resuming changes no output.

The processor keeps detector state in tables and restarts from them, so a run cut at any
tick, its tables read back as JSON by fresh stages, must give exactly the outputs of the
uninterrupted run: the same late verdicts, the same record highs, the same divergence
signals, including ticks still held in a pair's reorder buffer at the cut (released at
the end by a heartbeat long after them, as a finite input's end would).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from schemas.tick import Tick
from services.detection.rules import DivergenceRule, RecordHighRules, Rules, TickRules
from tests.unit.stage_helpers import Pipeline, plain

A, B, NOISE = "A.SH", "B.HK", "C"
START = datetime(2024, 12, 30, 15, 50, tzinfo=UTC)
# The wall clock of every tick (nothing waits out max_wait_s), and of the final heartbeat.
NOW, THE_END = 0.0, 1e9


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


def straight(rules: Rules, ticks: list[Tick]) -> tuple[list[Any], Pipeline]:
    pipeline = Pipeline(rules)
    outputs = [pipeline.tick(t, NOW) for t in ticks]
    outputs.append(pipeline.heartbeat(THE_END))
    return outputs, pipeline


def resumed(rules: Rules, ticks: list[Tick], split: int) -> tuple[list[Any], Pipeline, int]:
    pipeline = Pipeline(rules)
    outputs = [pipeline.tick(t, NOW) for t in ticks[:split]]
    held = pipeline.held()
    pipeline.restart()
    # restoring is a fixed point: the restored states serialise to what they were read from
    assert pipeline.rewritten() == (pipeline.symbols, pipeline.pairs)
    outputs.extend(pipeline.tick(t, NOW) for t in ticks[split:])
    outputs.append(pipeline.heartbeat(THE_END))
    return outputs, pipeline, held


@settings(max_examples=300, deadline=None)
@given(runs())
def test_a_restart_mid_sequence_changes_nothing(run: tuple[Rules, list[Tick], int]) -> None:
    rules, ticks, split = run
    want, straight_run = straight(rules, ticks)
    got, resumed_run, held = resumed(rules, ticks, split)
    event("ticks held at the split" if held else "nothing held at the split")
    assert got == want
    assert plain(resumed_run.symbols) == plain(straight_run.symbols)
    assert plain(resumed_run.pairs) == plain(straight_run.pairs)


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
    phases = [s["phase"] for s in got[4]["pair"]["signals"]]
    assert phases == ["open", "close"]
