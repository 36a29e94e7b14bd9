"""Tick bundles (many ticks per `ticks` record) through both stages: the same signals as
one tick per record, and per-tick replay safety across a crash. No broker. Dead letters
and the wire format of bundles are in test_bundle_records.py, the ingestor's grouping in
test_bundler.py."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.tick import Tick
from schemas.tick_bundle import partition_of
from services.processor.outputs import Outputs, Record
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage
from tests.unit.stage_helpers import RULES, as_records, make_ticks, per_subject

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
    run.batch(as_records(TICKS))
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
        records_plain += [r._replace(partition=p) for r in as_records(ticks)]
        records_mixed += [r._replace(partition=p) for r in bundled(ticks, [3, 1, 7], True)]
    straight.batch(records_plain)
    mixed.batch(records_mixed)
    assert per_subject(mixed.signals) == per_subject(straight.signals)
    assert mixed.dead == []
    for symbol, state in mixed.symbols.items():
        assert state["p"] == partition_of(symbol, 3)
