"""Tick bundles on the wire, no broker: a bad tick dead-lettered alone (`#index`), a bundle
malformed or off its partition dead-lettered whole, the partition function, and pair
bundles on the re-keyed feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

from schemas.pair_feed_codec import pair_tick
from schemas.tick_bundle import partition_of
from services.processor.outputs import Outputs, Record
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage
from tests.unit.stage_helpers import RULES


def tick_json(symbol: str, second: int, price: float) -> dict[str, Any]:
    return {"symbol": symbol, "ts": f"2026-01-05T02:00:{second:02d}+00:00", "price": price}


def test_a_bad_tick_in_a_bundle_is_dead_lettered_alone() -> None:
    items: list[Any] = [
        tick_json("CCC.HK", 1, 10.0),
        {"symbol": "CCC.HK", "ts": "2026-01-05T02:00:02+00:00", "price": -1},
        tick_json("CCC.HK", 3, 11.0),
        "not a tick",
        tick_json("CCC.HK", 0, 12.0),  # late against 02:00:03 by more than the rules allow?
    ]
    out = SymbolStage(RULES, "ticks", 1).process(
        [Record(None, orjson.dumps(items), 0, 40)], {}.get, 0.0
    )
    letters = {d.source: d for d in out.dead}
    assert set(letters) >= {"ticks[0]@40#1", "ticks[0]@40#3"}
    assert letters["ticks[0]@40#1"].field == "price"
    assert json.loads(letters["ticks[0]@40#1"].raw) == items[1]
    assert letters["ticks[0]@40#3"].raw == '"not a tick"'
    assert out.ticks == 3
    assert (out.states["CCC.HK"]["o"], out.states["CCC.HK"]["i"]) == (40, 4)


def test_a_bundle_off_its_partition_is_dead_lettered_whole() -> None:
    home = partition_of("CCC.HK", 6)
    other = next(
        s for s in ("AAA.SH", "BBB.HK", "X1.HK", "X2.HK", "X3.HK") if partition_of(s, 6) != home
    )
    value = orjson.dumps([tick_json("CCC.HK", 1, 10.0), tick_json(other, 2, 10.0)])
    stage = SymbolStage(RULES, "ticks", 6)
    out = stage.process([Record(None, value, home, 7)], {}.get, 0.0)
    assert [(d.reason, d.field, d.source) for d in out.dead] == [
        ("malformed", "symbol", f"ticks[{home}]@7")
    ]
    assert f"belongs to partition {partition_of(other, 6)}" in out.dead[0].detail
    assert (out.states, out.signals, out.evaluated) == ({}, [], 0)
    # A key that is not every tick's symbol: the same.
    keyed = stage.process([Record(b"CCC.HK", value, home, 8)], {}.get, 0.0)
    assert [d.source for d in keyed.dead] == [f"ticks[{home}]@8"]
    # Malformed as a whole.
    for bad in (b"[]", b"[1,", b"[[]]"):
        whole = stage.process([Record(None, bad, home, 9)], {}.get, 0.0)
        assert [d.reason for d in whole.dead] == ["malformed"], bad


def test_the_processor_partition_is_kafkas_default_partitioner() -> None:
    for i in range(2000):
        symbol = f"S{i}.HK"
        for n in (1, 3, 6, 12):
            assert partition_of(symbol, n) == (murmur2(symbol.encode()) & 0x7FFFFFFF) % n


def test_pair_bundles_are_one_record_per_pair_in_order() -> None:
    out = Outputs()
    for i in range(5):
        out.forwards.append(("P/Q", pair_tick("P", i, 1.0, 0, 9, i)))
        out.forward_origins.append(100 + i)
    out.forwards.append(("R/S", pair_tick("R", 0, 1.0, 0, 10, 0)))
    out.forward_origins.append(None)
    records = out.pair_records(max_ticks=3)
    assert [(pair, origin) for pair, _, origin in records] == [
        ("P/Q", 100),
        ("P/Q", 103),
        ("R/S", None),
    ]
    assert [m["src_index"] for m in json.loads(records[0][1])] == [0, 1, 2]
    assert json.loads(records[2][1])["symbol"] == "R"  # alone: a plain message


def test_pair_stage_dead_letters_a_bad_message_of_a_bundle_alone() -> None:
    good = json.loads(pair_tick("AAA.SH", 1767578400000000, 10.0, 0, 1, 0))
    wrong_leg = dict(good, symbol="ZZZ.HK", src_index=1)
    items = [good, wrong_leg, {"type": "nonsense"}, dict(good, src_index=3, ts_us=1767578401000000)]
    out = PairStage(RULES, "by_pair").process(
        [Record(b"AAA.SH/BBB.HK", orjson.dumps(items), 2, 5)], {}.get, now=0.0
    )
    assert [d.source for d in out.dead] == ["by_pair[2]@5#1", "by_pair[2]@5#2"]
    assert out.evaluated == 2
    assert out.states["AAA.SH/BBB.HK"]["src"] == {"0": [1, 3]}
    empty = PairStage(RULES, "by_pair").process(
        [Record(b"AAA.SH/BBB.HK", b"[]", 2, 6)], {}.get, 0.0
    )
    assert [d.source for d in empty.dead] == ["by_pair[2]@6"]


def test_pair_state_from_before_bundles_still_skips_replays() -> None:
    """States written before bundles hold a bare offset per source partition."""
    old = {"src": {"0": 5}, "tracker": None}
    stage = PairStage(RULES, "by_pair")
    replay = Record(b"AAA.SH/BBB.HK", pair_tick("AAA.SH", 1, 10.0, 0, 5, 0), 0, 1)
    fresh = PairStage(RULES, "by_pair").process([replay], {}.get, 0.0)
    # Unversioned, as every state was then.
    state = {k: v for k, v in fresh.states["AAA.SH/BBB.HK"].items() if k != "v"}
    state["src"] = old["src"]
    assert stage.process([replay], {"AAA.SH/BBB.HK": state}.get, 0.0).evaluated == 0
    later = replay._replace(value=pair_tick("AAA.SH", 2, 10.0, 0, 6, 0))
    assert stage.process([later], {"AAA.SH/BBB.HK": state}.get, 0.0).evaluated == 1


def test_bundle_dead_letter_source_names_the_tick() -> None:
    when = datetime(2026, 1, 5, tzinfo=UTC)
    out = Outputs()
    out.reject(
        Record(None, b"[..]", 3, 9),
        "ticks",
        when,
        reason="malformed",
        field=None,
        detail="x",
        index=2,
        raw=b"{}",
    )
    assert (out.dead[0].source, out.dead[0].raw) == ("ticks[3]@9#2", "{}")
