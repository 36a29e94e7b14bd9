"""Memory of history: 10,000 symbols x 400 daily bars, in the engine and as table state.

Prints the figures (measured on 1,000 symbols with tracemalloc, scaled by 10): the
trackers while bars wait for the first tick, after the first tick (one daily maximum per
local date, only the last 365 + lateness dates kept; older bars leave only the all-time
high), and the JSON state the processor's table holds per symbol.

    .venv/bin/python bench/bench_history_memory.py
"""

from __future__ import annotations

import gc
import json
import random
import sys
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.detection.engine import Engine
from services.detection.rules import Rules

SYMBOLS = 1_000
SCALE = 10
BARS = 400


def main() -> None:
    rng = random.Random(1)
    rules = Rules(divergence=())
    first_tick = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    days = [date(2026, 1, 2) - timedelta(days=i) for i in range(BARS * 7 // 5 + 10)]
    days = [d for d in days if d.weekday() < 5][:BARS]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    engine = Engine(rules)
    for s in range(SYMBOLS):
        symbol = f"S{s:05d}.HK"
        for d in days:
            high = round(rng.uniform(50, 150), 2)
            engine.add_bar(symbol, d.toordinal(), high, high * 0.99)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    for s in range(SYMBOLS):
        engine.process_values(f"S{s:05d}.HK", int(first_tick.timestamp() * 1e6), 100.0)
    gc.collect()
    seeded = tracemalloc.get_traced_memory()[0] - base
    before_states = tracemalloc.get_traced_memory()[0]
    states = [t.to_state() for t in engine.symbols.values()]
    gc.collect()
    as_table = tracemalloc.get_traced_memory()[0] - before_states
    tracemalloc.stop()
    del states
    state = json.dumps(engine.symbols["S00000.HK"].to_state()).encode()
    kept = len(engine.symbols["S00000.HK"].days)
    mib = 1024 * 1024
    print(f"history memory, {SYMBOLS * SCALE:,} symbols x {BARS} bars (measured on {SYMBOLS:,})")
    print(f"  bars held before the first tick : {held * SCALE / mib:8.1f} MiB")
    print(
        f"  after the first tick            : {seeded * SCALE / mib:8.1f} MiB "
        f"({kept} daily maxima kept per symbol)"
    )
    print(
        f"  table values (state dicts)      : {as_table * SCALE / mib:8.1f} MiB "
        "(the processor's in-memory table holds these as well)"
    )
    print(
        f"  state as JSON per symbol        : {len(state) / 1024:8.1f} KiB, "
        f"{len(state) * SYMBOLS * SCALE / mib:.1f} MiB for all (changelog)"
    )


if __name__ == "__main__":
    main()
