"""The day moves in the processor's stages equal the backtest's engine on the same feed.

Random feeds (history bars arriving before and among the ticks, late and late-accepted
ticks across midnight, every board) are cut into records of one tick or bundles, fed
batch by batch through the symbol and history stages over in-memory tables; between
batches the worker restarts on the tables as the changelog gives them back, and some
batches crash half-way through their state write and are replayed. The distinct signals
of each symbol (the alerter drops a repeated alert id) equal the engine's, in order.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.bar import Bar
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import Rules
from services.processor.history_stage import HistoryStage
from services.processor.outputs import Record
from services.processor.symbol_stage import SymbolStage
from services.processor.symbol_state import SymbolState
from tests.unit.detection.test_day_moves_reference import configs, feeds, rules_of
from tests.unit.naive_day_moves import Config, NBar, NTick


def tick_of(event: NTick) -> Tick:
    return Tick(
        symbol=event.symbol,
        ts=event.ts,
        price=event.price,
        volume=event.volume,
        kind=event.kind,
    )


def bar_of(event: NBar) -> Bar:
    return Bar(
        symbol=event.symbol, date=event.day, high=30.0, close=event.close, volume=event.volume
    )


def per_symbol(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in dict.fromkeys(lines):  # the alerter's de-duplication by alert id
        out.setdefault(orjson.loads(line)["symbol"], []).append(line)
    return out


class Worker:
    """The symbol and history stages over tables, as the processor's agents run them."""

    def __init__(self, rules: Rules, rng: random.Random) -> None:
        self.rules = rules
        self.rng = rng
        self.table: dict[str, Any] = {}
        self.signals: list[str] = []
        self.offset = 0
        self.restart()

    def restart(self) -> None:
        self.table = orjson.loads(orjson.dumps(self.table))
        self.ticks = SymbolStage(self.rules, "ticks")
        self.history = HistoryStage(self.rules, "history")

    def batch(self, records: list[Record], crash: bool) -> None:
        out = self.ticks.process(records, self.table.get, 0.0)
        self.signals += [s.model_dump_json() for s in out.signals]
        if not crash:
            self.table.update(out.states)
            return
        # Outputs sent, then only some of the states written before the worker died: the
        # batch's offsets were never committed, so the restarted worker reads it again.
        for symbol, state in out.states.items():
            if self.rng.random() < 0.5:
                self.table[symbol] = state
        self.restart()
        self.batch(records, crash=False)

    def bars(self, bars: list[Bar]) -> None:
        records = [Record(b.symbol.encode(), b.model_dump_json().encode(), 0, 0) for b in bars]
        out = self.history.process(records, self.table.get, 0.0)
        self.table.update(out.states)

    def records(self, ticks: list[Tick], sizes: list[int]) -> list[Record]:
        records: list[Record] = []
        start = 0
        while start < len(ticks):
            chunk = ticks[start : start + sizes[len(records) % len(sizes)]]
            if len(chunk) == 1:
                key, value = chunk[0].symbol.encode(), chunk[0].model_dump_json().encode()
            else:
                key = None
                value = b"[" + b",".join(t.model_dump_json().encode() for t in chunk) + b"]"
            records.append(Record(key, value, 0, self.offset))
            self.offset += 1
            start += len(chunk)
        return records


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    configs(),
    feeds(),
    st.lists(st.integers(1, 6), min_size=1, max_size=4),
    st.lists(st.integers(1, 5), min_size=1, max_size=4),
    st.integers(0, 2**32),
)
def test_the_stream_gives_the_engines_signals_through_restarts_and_replays(
    config: Config,
    events: list[NTick | NBar],
    sizes: list[int],
    cuts: list[int],
    seed: int,
) -> None:
    rules = rules_of(config, windows=("all_time", "52w"))
    engine = Engine(rules)
    expected: list[str] = []
    rng = random.Random(seed)
    worker = Worker(rules, rng)
    pending: list[Tick] = []

    def flush() -> None:
        records = worker.records(pending, sizes)
        start, i = 0, 0
        while start < len(records):
            worker.batch(records[start : start + cuts[i % len(cuts)]], crash=rng.random() < 0.2)
            if rng.random() < 0.3:
                worker.restart()
            start, i = start + cuts[i % len(cuts)], i + 1
        pending.clear()

    for event in events:
        if isinstance(event, NBar):
            flush()
            bar = bar_of(event)
            engine.add_bar(bar.symbol, bar.date.toordinal(), bar.high, bar.close, bar.volume)
            worker.bars([bar])
            continue
        tick = tick_of(event)
        result = engine.process(tick)
        if not isinstance(result, Late):
            expected += [s.model_dump_json() for s in result]
        pending.append(tick)
    flush()
    assert per_symbol(worker.signals) == per_symbol(expected)


def test_a_state_written_before_the_day_moves_loads_and_starts_them_afresh() -> None:
    rules = Rules.from_toml_text("divergence = []\n[price_move]\n[limits]\n")
    old = SymbolStage(Rules.from_toml_text("divergence = []\n"), "ticks")
    table: dict[str, Any] = {}
    first = Tick.model_validate(
        {"symbol": "600001.SH", "ts": "2026-02-12T10:00:00+08:00", "price": 10.0}
    )
    out = old.process([Record(b"600001.SH", first.model_dump_json().encode(), 0, 0)], table.get, 0)
    table.update(orjson.loads(orjson.dumps(out.states)))
    assert "moves" not in table["600001.SH"]
    stage = SymbolStage(rules, "ticks")
    ticks = [
        ("2026-02-12T14:59:00+08:00", 10.0),  # the moves start here: no previous close
        ("2026-02-13T10:00:00+08:00", 11.0),  # +10% on 12 Feb's close: a move, and sealed
    ]
    kinds = []
    for offset, (ts, price) in enumerate(ticks, start=1):
        tick = Tick.model_validate({"symbol": "600001.SH", "ts": ts, "price": price})
        record = Record(b"600001.SH", tick.model_dump_json().encode(), 0, offset)
        out = stage.process([record], table.get, 0.0)
        table.update(orjson.loads(orjson.dumps(out.states)))
        kinds.append([s.kind for s in out.signals])
    assert kinds == [[], ["record_high", "price_move", "limit_hit"]]
    state = SymbolState.from_json("600001.SH", table["600001.SH"], stage.trackers)
    assert state.moves is not None
    assert state.moves.to_state()["v"] == 1


def test_a_batch_that_raises_half_way_is_replayed_from_the_table_not_the_cache() -> None:
    rules = Rules.from_toml_text("divergence = []\n[volume_spike]\ndays = 1\nmultiples = [1.5]\n")
    stage = SymbolStage(rules, "ticks")
    table: dict[str, Any] = {}

    def record(offset: int, symbol: str, minute: int) -> Record:
        tick = Tick.model_validate(
            {
                "symbol": symbol,
                "ts": f"2026-01-05T10:{minute:02d}:00+08:00",
                "price": 10.0,
                "volume": 100,
            }
        )
        return Record(symbol.encode(), tick.model_dump_json().encode(), 0, offset)

    table.update(stage.process([record(0, "600001.SH", 0)], table.get, 0.0).states)
    batch = [record(1, "600001.SH", 1), record(2, "600002.SH", 1)]

    def failing(symbol: str) -> dict[str, Any] | None:
        if symbol == "600002.SH":
            raise RuntimeError("the table is not readable now")
        return table.get(symbol)

    with pytest.raises(RuntimeError):
        stage.process(batch, failing, 0.0)
    # faust runs the batch again on the same stage: 600001.SH's tick counts once
    table.update(stage.process(batch, table.get, 0.0).states)
    assert table["600001.SH"]["moves"]["volume"] == 200


def test_a_record_fetched_again_later_in_the_same_batch_counts_once() -> None:
    """After a seek back, a batch can hold a partition's records and then some of them
    again: every tick at or before the symbol's last applied place is skipped, as the
    table's place skips them across batches (a record high would not notice, a volume
    would count them twice)."""
    rules = Rules.from_toml_text("divergence = []\n[volume_spike]\ndays = 1\nmultiples = [1.5]\n")
    stage = SymbolStage(rules, "ticks")
    table: dict[str, Any] = {}

    def record(offset: int, minute: int, volume: int) -> Record:
        tick = Tick.model_validate(
            {
                "symbol": "600001.SH",
                "ts": f"2026-01-05T10:{minute:02d}:00+08:00",
                "price": 10.0,
                "volume": volume,
            }
        )
        return Record(b"600001.SH", tick.model_dump_json().encode(), 0, offset)

    batch = [record(5, 0, 100), record(6, 1, 200), record(5, 0, 100), record(6, 1, 200)]
    batch.append(record(7, 2, 300))
    out = stage.process(batch, table.get, 0.0)
    assert out.states["600001.SH"]["moves"]["volume"] == 600
    assert (out.states["600001.SH"]["o"], out.evaluated) == (7, 3)
