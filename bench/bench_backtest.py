"""Benchmark: backtest throughput, end to end from a CSV file to JSON lines.

Generates (once, cached under .local/bench/) 1,000,000 synthetic ticks over 50 symbols,
four of them indices in two configured pairs, then runs the backtest CLI on it and
prints ticks per second, for three rule sets on the same file, alternated run by run:
the two pairs (RULES), record highs alone, and every signal (record highs, the pairs, an
A/H listing and the three day moves). The figure that matters is the ratio of every
signal to record highs alone (issue 21: at least 0.8). A benchmark, not a test: it
prints figures and asserts nothing about speed (the machine decides those); it fails
only if a run itself fails.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INDICES = ["000688.SH", "HSTECH.HK", "HSI.HK", "000300.SH"]
RULES = """
[ticks]
allowed_lateness_s = 5

[[divergence]]
a = "000688.SH"
b = "HSTECH.HK"
window = "ytd"
threshold_pp = 5.0

[[divergence]]
a = "000300.SH"
b = "HSI.HK"
window = "20d"
threshold_pp = 5.0
"""

RULES_RECORD_HIGHS = """
divergence = []

[ticks]
allowed_lateness_s = 5
"""
# Every signal: the pairs above, an A/H listing of two of the generated stocks at a fixed
# rate, and the three day moves (the .SH stocks are main-board codes, so limits apply).
RULES_ALL = (
    RULES
    + """
[[ah]]
a = "600001.SH"
h = "0001.HK"
fx_rate = 1.08

[price_move]
levels_pct = [2.0, 5.0, 10.0, 20.0]

[limits]

[volume_spike]
days = 2
multiples = [1.5, 2.0, 5.0]
"""
)
# Record highs and the three day moves, no pair or listing: the day moves' own cost.
RULES_DAY_MOVES = (
    RULES_RECORD_HIGHS
    + """
[price_move]
levels_pct = [2.0, 5.0, 10.0, 20.0]

[limits]

[volume_spike]
days = 2
multiples = [1.5, 2.0, 5.0]
"""
)
CONTENDERS = {
    "pairs": RULES,
    "record_highs": RULES_RECORD_HIGHS,
    "day_moves": RULES_DAY_MOVES,
    "every_signal": RULES_ALL,
}


def generate(path: Path, n: int, seed: int = 20260213) -> None:
    rng = random.Random(seed)
    stocks = [f"{i:04d}.HK" for i in range(1, 24)] + [f"{600000 + i}.SH" for i in range(23)]
    symbols = stocks + INDICES
    prices = {s: rng.uniform(5, 500) for s in symbols}
    ms = 1_735_689_600_000  # 2025-01-01T00:00:00Z
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("symbol,ts,price,volume,kind\n")
        for i in range(n):
            s = symbols[i % len(symbols)]
            prices[s] *= 1.0 + rng.gauss(0.0001, 0.004)
            ms += rng.randint(200, 800)
            kind = "index" if s in INDICES else "trade"
            fh.write(f"{s},{ms},{prices[s]:.4f},{rng.randint(1, 5000)},{kind}\n")
    tmp.rename(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cache = ROOT / ".local" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    data = cache / f"ticks-{args.ticks}.csv"
    if not data.exists():
        started = time.perf_counter()
        generate(data, args.ticks)
        print(f"generated {data} in {time.perf_counter() - started:.1f}s")
    rates: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for run in range(1, args.runs + 1):
        for name, text in CONTENDERS.items():
            rules = cache / f"bench-rules-{name}.toml"
            rules.write_text(text, encoding="utf-8")
            rate = _one_run(data, rules, args.ticks, f"run {run} {name}")
            if rate is None:
                return 1
            rates[name].append(rate)
    medians = {}
    for name, found in rates.items():
        found.sort()
        medians[name] = found[len(found) // 2]
        print(
            f"backtest throughput, {name}: median {medians[name]:,.0f} ticks/s, "
            f"best {found[-1]:,.0f} ticks/s over {len(found)} runs"
        )
    print(
        "every signal / record highs alone: "
        f"{medians['every_signal'] / medians['record_highs']:.2f} (target 0.8); "
        f"record highs and day moves / record highs alone: "
        f"{medians['day_moves'] / medians['record_highs']:.2f}"
    )
    return 0


def _one_run(data: Path, rules: Path, ticks: int, label: str) -> float | None:
    cli = [sys.executable, "-m", "services.cli", "backtest", str(data), "--config", str(rules)]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.run(cli, stdout=out, stderr=subprocess.PIPE, text=False, check=False)
        wall = time.perf_counter() - started
        out.seek(0)
        signals = sum(1 for _ in out)
    if proc.returncode != 0:
        print(proc.stderr.decode(), file=sys.stderr)
        return None
    summary = proc.stderr.decode().strip().splitlines()[-1]
    rate = ticks / wall
    print(
        f"{label}: {ticks:,} ticks, {signals:,} signals, {wall:.2f}s wall "
        f"(process start included): {rate:,.0f} ticks/s"
    )
    print(f"        {summary}")
    return rate


if __name__ == "__main__":
    raise SystemExit(main())
