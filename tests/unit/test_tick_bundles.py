"""Tick bundles (many ticks per `ticks` record): same signals, per-tick replay safety,
dead letters per tick or per bundle, and the ingestor's grouping. No broker."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2

from schemas.tick import Tick
from schemas.tick_bundle import partition_of
from services.ingestor.bundling import Bundler
from services.processor.fast_json import pair_tick
from services.processor.outputs import Outputs, Record
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage
from tests.unit.stage_helpers import RULES, make_ticks, per_subject

TICKS = make_ticks(240, seed=11)


class Run:
    """Both stages fed batch by batch, with tables, as the app does (no Kafka)."""

    def __init__(self, partitions: int | None = 1) -> None:
        self.symbols: dict[str, Any] = {}
        self.pairs: dict[str, Any] = {}
        self.symbol_stage = SymbolStage(RULES, "ticks", partitions)
        self.pair_stage = PairStage(RULES, "by_pair")
        self.signals: list[str] = []
        self.dead: list[str] = []
        self.pair_offset = 0

    def batch(self, records: list[Record], *, keep: float = 1.0, rng: Any = None) -> Outputs:
        """`keep` < 1: a crash during the state write; only that share of states lands."""
        out = self.symbol_stage.process(records, self.symbols.get, 0.0)
        forwarded = []
        for pair, value, origin in out.pair_records():
            forwarded.append(Record(pair.encode(), value, 0, self.pair_offset, origin))
            self.pair_offset += 1
        pair_out = self.pair_stage.process(forwarded, self.pairs.get, now=0.0)
        # Outputs are sent (acknowledged) before the state write.
        self.signals += [s.model_dump_json() for s in out.signals + pair_out.signals]
        self.dead += [d.source for d in out.dead + pair_out.dead]
        for key, state in out.states.items():
            if keep >= 1.0 or rng.random() < keep:
                self.symbols[key] = state
        if keep >= 1.0:
            self.pairs.update(pair_out.states)
            return out
        # Both workers died mid-write. The forwards were acknowledged on the re-keyed
        # topic before the symbol states were written, so the pair stage's restart reads
        # them again (its offsets were not committed): same states-partly-written start.
        for key, state in pair_out.states.items():
            if rng.random() < keep:
                self.pairs[key] = state
        self.symbol_stage = SymbolStage(RULES, "ticks", self.symbol_stage.partitions)
        self.pair_stage = PairStage(RULES, "by_pair")
        again = self.pair_stage.process(forwarded, self.pairs.get, now=0.0)
        self.signals += [s.model_dump_json() for s in again.signals]
        self.pairs.update(again.states)
        return out

    def distinct(self) -> list[str]:
        """Signals as the alerter delivers them: a repeated alert id is dropped."""
        return list(dict.fromkeys(self.signals))


def singles(ticks: list[Tick]) -> list[Record]:
    return [
        Record(t.symbol.encode(), t.model_dump_json().encode(), 0, i) for i, t in enumerate(ticks)
    ]


def bundled(ticks: list[Tick], sizes: list[int], plain_singles: bool) -> list[Record]:
    """`ticks` cut into consecutive bundles of `sizes` (cycled), one record each."""
    records, start, offset = [], 0, 0
    while start < len(ticks):
        size = sizes[offset % len(sizes)]
        chunk = ticks[start : start + size]
        if len(chunk) == 1 and plain_singles:
            value, key = chunk[0].model_dump_json().encode(), chunk[0].symbol.encode()
        else:
            value = b"[" + b",".join(t.model_dump_json().encode() for t in chunk) + b"]"
            key = None
        records.append(Record(key, value, 0, offset))
        start, offset = start + size, offset + 1
    return records


def in_batches(run: Run, records: list[Record], cuts: list[int]) -> None:
    start, i = 0, 0
    while start < len(records):
        size = cuts[i % len(cuts)]
        run.batch(records[start : start + size])
        start, i = start + size, i + 1


def one_per_record() -> list[str]:
    run = Run()
    run.batch(singles(TICKS))
    return run.signals


BASELINE = one_per_record()


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=5),
    plain_singles=st.booleans(),
)
def test_any_split_into_bundles_gives_the_signals_of_one_tick_per_record(
    sizes: list[int], cuts: list[int], plain_singles: bool
) -> None:
    assert BASELINE  # the sequence has record highs and divergences to lose
    run = Run()
    in_batches(run, bundled(TICKS, sizes, plain_singles), cuts)
    # Per subject, in order (a batch emits record highs before its pairs' signals, so the
    # interleaving across subjects follows the batch cuts).
    assert per_subject(run.signals) == per_subject(BASELINE)
    assert run.dead == []


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=8),
    crash_at=st.integers(min_value=0, max_value=30),
    resume_back=st.integers(min_value=0, max_value=5),
    keep=st.floats(min_value=0.0, max_value=0.99),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_a_crash_mid_bundle_neither_loses_nor_repeats_an_alert(
    sizes: list[int], crash_at: int, resume_back: int, keep: float, seed: int
) -> None:
    records = bundled(TICKS, sizes, plain_singles=True)
    crash_at = min(crash_at, len(records) - 1)
    run = Run()
    for rec in records[:crash_at]:
        run.batch([rec])
    # The bundle at crash_at: outputs sent, then the worker dies with only some of its
    # symbols' (and pairs') states written; the offset was never committed.
    run.batch([records[crash_at]], keep=keep, rng=random.Random(seed))
    # The new worker resumes at or before the uncommitted bundle.
    run.batch(records[max(0, crash_at - resume_back) :])
    assert per_subject(run.distinct()) == per_subject(BASELINE)
    # Only re-sends of outputs the crash may have lost: never a different alert.
    assert set(run.signals) == set(BASELINE)


def test_mixed_single_and_bundled_records_on_three_partitions() -> None:
    """Each partition's ticks bundled or not: the same record highs per symbol."""
    straight, mixed = Run(partitions=3), Run(partitions=3)
    by_partition: dict[int, list[Tick]] = {}
    for tick in TICKS:
        by_partition.setdefault(partition_of(tick.symbol, 3), []).append(tick)
    records_plain, records_mixed = [], []
    for p, ticks in by_partition.items():
        records_plain += [r._replace(partition=p) for r in singles(ticks)]
        records_mixed += [r._replace(partition=p) for r in bundled(ticks, [3, 1, 7], True)]
    straight.batch(records_plain)
    mixed.batch(records_mixed)
    assert per_subject(mixed.signals) == per_subject(straight.signals)
    assert mixed.dead == []
    for symbol, state in mixed.symbols.items():
        assert state["p"] == partition_of(symbol, 3)


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
    state = dict(fresh.states["AAA.SH/BBB.HK"], src=old["src"])
    assert stage.process([replay], {"AAA.SH/BBB.HK": state}.get, 0.0).evaluated == 0
    later = replay._replace(value=pair_tick("AAA.SH", 2, 10.0, 0, 6, 0))
    assert stage.process([later], {"AAA.SH/BBB.HK": state}.get, 0.0).evaluated == 1


class TestBundler:
    def test_closes_on_count_bytes_and_time_and_keeps_order(self) -> None:
        b = Bundler(window_s=0.005, max_ticks=3, max_bytes=40)
        assert b.add(0, "A", b"1" * 5, 0.0, 1) == []
        assert b.add(1, "B", b"2" * 5, 0.001, 2) == []
        assert b.add(0, "A", b"3" * 5, 0.002, 3) == []
        [full] = b.add(0, "C", b"4" * 5, 0.003, 4)  # the third tick: full
        assert (full.partition, full.values, full.first_ms) == (
            0,
            [b"11111", b"33333", b"44444"],
            1,
        )
        assert (full.key(), full.value()) == (None, b"[11111,33333,44444]")
        assert b.next_due() == 0.001 + 0.005
        assert b.due(0.0059) == []
        [timed] = b.due(0.006)
        assert (timed.values, timed.value(), timed.key()) == ([b"22222"], b"22222", b"B")
        assert b.next_due() is None
        # Bytes: a tick that would overflow the bundle closes it first.
        assert b.add(2, "D", b"x" * 30, 1.0, 5) == []
        [before] = b.add(2, "D", b"y" * 30, 1.0, 6)
        assert (before.values, before.key()) == ([b"x" * 30], b"D")
        assert [x.values for x in b.drain()] == [[b"y" * 30]]

    def test_a_bundle_value_is_valid_json_of_its_ticks(self) -> None:
        b = Bundler(window_s=1.0, max_ticks=100, max_bytes=10**6)
        ticks = make_ticks(50, seed=2)
        for t in ticks:
            b.add(0, t.symbol, t.model_dump_json().encode(), 0.0, 0)
        [bundle] = b.drain()
        parsed = [Tick.model_validate(x) for x in json.loads(bundle.value())]
        assert parsed == ticks


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
