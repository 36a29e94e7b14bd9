"""Stored samples of the processor's table values, and the run that makes and checks them.

A sample directory (`tests/data/processor_state/<name>/`) holds what one version of the
code wrote: the rules it ran, the symbol, pair and A/H tables after a first part of a
scenario (history bars, tick bundles and single ticks over a year end, pair ticks held
in the reorder buffers), and the outputs and tables of the second part, run from those
tables. A newer processor must load every stored sample and continue it exactly as the
code that wrote it did: that is the compatibility test (`test_processor_state_samples`).

`python -m tests.unit.state_samples DIR` writes a sample of the current code's format
into DIR. A stored sample is never rewritten: a new format gets a new directory.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.bar import Bar
from schemas.tick import Tick
from schemas.tick_bundle import partition_of
from services.detection.rules import Rules
from services.processor.outputs import AH_KEY_PREFIX, Record
from tests.unit.stage_helpers import PARTITIONS, Pipeline, plain

# Where the re-keyed topic's offsets of the second part start (dead letters name them).
SECOND_PART_PAIR_OFFSET = 10_000
RULES_TOML = """\
[ticks]
allowed_lateness_s = 5

[record_high]
windows = ["all_time", "52w"]
step_pct = 1.0

[[divergence]]
a = "000688.SH"
b = "HSTECH.HK"
window = "ytd"
threshold_pp = 2.0

[[divergence]]
a = "HSTECH.HK"
b = "000688.SH"
window = "5d"
threshold_pp = 3.0

[[ah]]
a = "688981.SH"
h = "0981.HK"
fx = "CNYHKD"
threshold_pct = 4.0
max_wait_s = 2.0
"""
SYMBOLS = ("000688.SH", "HSTECH.HK", "688981.SH", "0981.HK", "CNYHKD", "2513.HK", "AAPL")
START = {"000688.SH": 1000.0, "HSTECH.HK": 5000.0, "688981.SH": 100.0, "0981.HK": 110.0}


# -- the scenario ---------------------------------------------------------------------


def _bar_records(
    symbols: tuple[str, ...], first: date, days: int, offset: int, level: float | None = None
) -> list[Record]:
    rng = random.Random(5)
    records = []
    for symbol in symbols:
        level = START.get(symbol, 50.0) if level is None else level
        for n in range(days):
            close = round(level * (1 + rng.gauss(0, 0.03)), 2)
            bar = Bar(
                symbol=symbol,
                date=first + timedelta(days=n),
                high=round(close * 1.02, 2),
                close=close,
            )
            records.append(Record(symbol.encode(), bar.model_dump_json().encode(), 0, offset))
            offset += 1
    return records


def _walk(seed: int, start: datetime, n: int) -> list[Tick]:
    rng = random.Random(seed)
    prices = {s: START.get(s, 50.0) for s in SYMBOLS}
    prices["CNYHKD"] = 1.08
    newest: dict[str, datetime] = {}
    t = start
    out = []
    for _ in range(n):
        symbol = rng.choice(SYMBOLS)
        drift = {"000688.SH": 0.004, "688981.SH": 0.004, "2513.HK": 0.01}.get(symbol, 0.0)
        prices[symbol] *= 1 + rng.gauss(drift, 0.002 if symbol == "CNYHKD" else 0.015)
        t += timedelta(seconds=rng.randint(1, 5400))
        if symbol in newest and rng.random() < 0.08:
            ts = newest[symbol] - timedelta(seconds=rng.randint(3, 60))  # late beyond 5 s, or not
        else:
            ts = newest[symbol] = t
        kind = "index" if symbol in ("000688.SH", "HSTECH.HK") else "trade"
        out.append(Tick(symbol=symbol, ts=ts, price=round(prices[symbol], 4), kind=kind))
    return out


def _tick_records(ticks: list[Tick], offsets: dict[int, int]) -> list[Record]:
    """Ticks as `ticks` records: runs of a partition's ticks bundled (2-4), others alone."""
    by_partition: dict[int, list[Tick]] = {}
    for tick in ticks:
        by_partition.setdefault(partition_of(tick.symbol, PARTITIONS), []).append(tick)
    records = []
    for partition, mine in sorted(by_partition.items()):
        i = 0
        while i < len(mine):
            size = (1, 3, 1, 2, 4)[i % 5]
            chunk = mine[i : i + size]
            offset = offsets.get(partition, 0)
            offsets[partition] = offset + 1
            if len(chunk) == 1:
                key: bytes | None = chunk[0].symbol.encode()
                value = chunk[0].model_dump_json().encode()
            else:
                key = None
                value = b"[" + b",".join(t.model_dump_json().encode() for t in chunk) + b"]"
            records.append(Record(key, value, partition, offset))
            i += size
    return records


def _as_json(record: Record) -> dict[str, Any]:
    return {
        "key": None if record.key is None else record.key.decode(),
        "value": record.value.decode(),
        "partition": record.partition,
        "offset": record.offset,
    }


def _record(saved: dict[str, Any]) -> Record:
    key = saved["key"]
    return Record(
        None if key is None else key.encode(),
        saved["value"].encode(),
        saved["partition"],
        saved["offset"],
    )


def first_part(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Bars, then ticks over the year end; returns the second part's batches."""
    pipeline.bars(_bar_records(("000688.SH", "HSTECH.HK"), date(2025, 11, 20), 30, 0), 0.0)
    pipeline.bars(_bar_records(("2513.HK",), date(2025, 11, 20), 30, 100, 45.0), 0.0)
    # Older and higher: the all-time high of 2513.HK, outside the 52-week window by 2026.
    pipeline.bars(_bar_records(("2513.HK",), date(2024, 11, 1), 20, 500, 80.0), 0.0)
    # Bars of a symbol that has no tick yet: held in its state until its first one.
    pipeline.bars(_bar_records(("0700.HK",), date(2025, 12, 1), 5, 1000), 0.0)
    offsets: dict[int, int] = {}
    walk = _walk(7, datetime(2025, 12, 29, 1, 0, tzinfo=UTC), 240)
    records = _tick_records(walk[:160], offsets)
    now = 1000.0
    for start in range(0, len(records), 9):
        pipeline.ticks(records[start : start + 9], now)
        now += 0.5
    # One leg runs ahead with no heartbeat after it: ticks stay held in the pair states.
    ahead = max(t.ts for t in walk[:160]) + timedelta(seconds=30)
    last = _tick_records(
        [
            Tick(symbol="000688.SH", ts=ahead, price=walk[150].price, kind="index"),
            Tick(symbol="CNYHKD", ts=ahead, price=1.2),
        ],
        offsets,
    )
    pipeline.ticks(last, now)
    second = _tick_records(walk[160:], offsets)
    steps: list[dict[str, Any]] = [
        # A replay of records the tables already hold (a restart before the commit).
        {"kind": "ticks", "now": now + 1, "records": [_as_json(r) for r in records[-9:] + last]},
        {"kind": "heartbeat", "now": now + 1.5},
    ]
    now += 4
    for start in range(0, len(second), 7):
        steps.append(
            {
                "kind": "ticks",
                "now": now,
                "records": [_as_json(r) for r in second[start : start + 7]],
            }
        )
        now += 0.5
    malformed = Record(
        b"AAPL", b'{"symbol": "AAPL", "ts": "2026-01-10T00:00:00Z", "price": -1}', 0, 999
    )
    steps.append({"kind": "ticks", "now": now, "records": [_as_json(malformed)]})
    steps.append(
        {
            "kind": "bars",
            "now": now,
            "records": [
                _as_json(r) for r in _bar_records(("AAPL", "0700.HK"), date(2025, 12, 5), 3, 2000)
            ],
        }
    )
    steps.append({"kind": "heartbeat", "now": now + 10})
    return steps


def second_part(rules: Rules, symbols: dict[str, Any], pairs: dict[str, Any]) -> Pipeline:
    """A pipeline restarted on the tables (as the changelog gives them back)."""
    return Pipeline(rules, symbols, pairs, SECOND_PART_PAIR_OFFSET)


def run_steps(pipeline: Pipeline, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    outputs = []
    for step in steps:
        if step["kind"] == "heartbeat":
            outputs.append(pipeline.heartbeat(step["now"]))
            continue
        records = [_record(r) for r in step["records"]]
        run = pipeline.ticks if step["kind"] == "ticks" else pipeline.bars
        outputs.append(run(records, step["now"]))
    return outputs


def split_pairs(table: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pair table as its divergence pairs and its A/H listings."""
    ah = {k: v for k, v in table.items() if k.startswith(AH_KEY_PREFIX)}
    return {k: v for k, v in table.items() if k not in ah}, ah


def write_sample(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=False)
    (directory / "rules.toml").write_text(RULES_TOML)
    pipeline = Pipeline(Rules.from_toml_text(RULES_TOML))
    steps = first_part(pipeline)
    pairs, ah = split_pairs(pipeline.pairs)

    def dump(name: str, value: Any) -> None:
        (directory / name).write_text(json.dumps(plain(value), indent=1, sort_keys=True) + "\n")

    dump("symbol-state.json", pipeline.symbols)
    dump("pair-state.json", pairs)
    dump("ah-state.json", ah)
    dump("steps.json", steps)
    # The second part, run from the tables as a restarted worker reads them back.
    pipeline = second_part(Rules.from_toml_text(RULES_TOML), pipeline.symbols, pipeline.pairs)
    dump("expected-outputs.json", run_steps(pipeline, steps))
    pairs, ah = split_pairs(pipeline.pairs)
    dump("expected-symbol-state.json", pipeline.symbols)
    dump("expected-pair-state.json", pairs)
    dump("expected-ah-state.json", ah)


if __name__ == "__main__":
    write_sample(Path(sys.argv[1]))
