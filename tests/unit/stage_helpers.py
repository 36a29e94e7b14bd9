"""Shared by the processor stage tests: rules, a random tick walk, and the stages run in
turn over in-memory tables, as the faust agents run them over their tables."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.signals import SIGNAL_ADAPTER
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import DivergenceRule, Rules
from services.processor.outputs import Outputs, Record
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage

RULES = Rules(divergence=(DivergenceRule(a="AAA.SH", b="BBB.HK", threshold_pp=2.0),))


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
