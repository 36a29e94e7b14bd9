"""Shared by the processor stage tests: rules, a random tick walk, and the stages run in
turn over in-memory tables, as the faust agents run them over their tables."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.bar import Bar
from schemas.pair_feed import Heartbeat
from schemas.signals import SIGNAL_ADAPTER
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import DivergenceRule, Rules
from services.processor.history_stage import HistoryStage
from services.processor.outputs import Outputs, Record
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage
from services.processor.symbol_state import SymbolState

RULES = Rules(divergence=(DivergenceRule(a="AAA.SH", b="BBB.HK", threshold_pp=2.0),))
# The `ticks` topic's partitions for `Pipeline` (a bundle must hash to its record's).
PARTITIONS = 3


class PendingAcks:
    """A fake producer's acknowledgements, given (or failed) when the test says."""

    def __init__(self) -> None:
        self.acks: list[asyncio.Future[None]] = []

    def acknowledge(self, error: Exception | None = None) -> None:
        for ack in self.acks:
            if not ack.done():
                if error is None:
                    ack.set_result(None)
                else:
                    ack.set_exception(error)


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


def forward(out: Outputs, tables: Tables, pair_stage: PairStage, partition: int = 0) -> Outputs:
    """What a symbol-keyed stage forwarded, through the pair stage, its states written."""
    forwarded = [
        Record(pair.encode(), payload, partition, i)
        for i, (pair, payload) in enumerate(out.forwards)
    ]
    pair_out = pair_stage.process(forwarded, tables.pairs.get, now=0.0)
    tables.pairs.update(pair_out.states)
    return pair_out


def run_stages(
    records: list[Record], tables: Tables, symbol_stage: SymbolStage, pair_stage: PairStage
) -> tuple[list[str], Outputs]:
    out = symbol_stage.process(records, tables.symbols.get, 0.0)
    tables.symbols.update(out.states)
    pair_out = forward(out, tables, pair_stage)
    return [s.model_dump_json() for s in out.signals + pair_out.signals], out


def engine_signals(ticks: list[Tick], engine: Engine | None = None) -> list[str]:
    engine = Engine(RULES) if engine is None else engine
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


@dataclass
class Pipeline:
    """The processor's three stages over in-memory tables, as its agents run them.

    Each call is one batch: the symbol (or history) stage, then its forwards as one
    batch of the re-keyed topic through the pair stage; the states are written after.
    Returns the batch's outputs (`view`).
    """

    rules: Rules
    symbols: dict[str, Any] = field(default_factory=dict)
    pairs: dict[str, Any] = field(default_factory=dict)
    pair_offset: int = 0  # the re-keyed topic's next offset
    tick_offset: int = 0  # the next offset of `tick` on `ticks` (partition 0)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """A worker restarted: fresh stages (nothing cached), and the tables as the
        changelog gives them back (JSON decoded)."""
        self.symbols, self.pairs = plain(self.symbols), plain(self.pairs)
        self.symbol_stage = SymbolStage(self.rules, "ticks", PARTITIONS)
        self.history_stage = HistoryStage(self.rules, "history")
        self.pair_stage = PairStage(self.rules, "by_pair")

    def ticks(self, records: list[Record], now: float) -> dict[str, Any]:
        out = self.symbol_stage.process(records, self.symbols.get, now)
        return self._finish(out, now)

    def tick(self, tick: Tick, now: float) -> dict[str, Any]:
        """One tick, alone in its record and its batch."""
        record = Record(tick.symbol.encode(), tick.model_dump_json().encode(), 0, self.tick_offset)
        self.tick_offset += 1
        return self.ticks([record], now)

    def bars(self, records: list[Record], now: float) -> dict[str, Any]:
        out = self.history_stage.process(records, self.symbols.get, now)
        return self._finish(out, now)

    def bar(self, bar: Bar, now: float) -> dict[str, Any]:
        return self.bars([Record(bar.symbol.encode(), bar.model_dump_json().encode(), 0, 0)], now)

    def heartbeat(self, now: float) -> dict[str, Any]:
        """The leader's heartbeat to every pair and listing: releases ticks held too long."""
        beat = Heartbeat().model_dump_json().encode()
        records = []
        for key in self.pair_stage.subjects():
            records.append(Record(key.encode(), beat, 0, self.pair_offset))
            self.pair_offset += 1
        pair_out = self.pair_stage.process(records, self.pairs.get, now)
        self.pairs.update(pair_out.states)
        return {"pair": view(pair_out)}

    def rewritten(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The tables as a restarted worker reads every state back and writes it again:
        equal to the tables (restoring is a fixed point)."""
        trackers = self.symbol_stage.trackers
        symbols = {
            s: SymbolState.from_json(s, v, trackers).to_json() for s, v in self.symbols.items()
        }
        pairs = {k: PairStage(self.rules)._state(k, v).to_json() for k, v in self.pairs.items()}
        return plain(symbols), plain(pairs)

    def held(self) -> int:
        """Ticks held in the pairs' and listings' reorder buffers, as the tables say."""
        return sum(len(value["tracker"]["buffer"]) for value in self.pairs.values())

    def _finish(self, out: Outputs, now: float) -> dict[str, Any]:
        forwarded = []
        for pair, value, origin in out.pair_records():
            forwarded.append(Record(pair.encode(), value, 0, self.pair_offset, origin))
            self.pair_offset += 1
        pair_out = self.pair_stage.process(forwarded, self.pairs.get, now)
        self.symbols.update(out.states)
        self.pairs.update(pair_out.states)
        return {"symbol": view(out), "pair": view(pair_out)}


def view(out: Outputs) -> dict[str, Any]:
    """A batch's outputs as JSON-plain data (the states are checked from the tables)."""
    return {
        "signals": [json.loads(s.model_dump_json()) for s in out.signals],
        "dead": [json.loads(d.model_dump_json()) for d in out.dead],
        "forwards": [[pair, json.loads(value)] for pair, value, _ in out.pair_records()],
        "evaluated": out.evaluated,
        "bars": dict(sorted(out.bars.items())),
    }


def plain(value: Any) -> Any:
    """A table value as it comes back from the changelog (JSON decoded)."""
    return json.loads(json.dumps(value))
