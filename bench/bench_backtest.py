"""Benchmark: backtest throughput, end to end from a CSV file to JSON lines.

Generates (once, cached under .local/bench/) 1,000,000 synthetic ticks over 50 symbols,
four of them indices in two configured pairs, then runs the backtest CLI on it and
prints ticks per second. A benchmark, not a test: it prints figures and asserts nothing
about speed (the machine decides those); it fails only if the run itself fails.
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
    rules = cache / "bench-rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    cli = [sys.executable, "-m", "services.cli", "backtest", str(data), "--config", str(rules)]
    rates = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryFile() as out:
            started = time.perf_counter()
            proc = subprocess.run(cli, stdout=out, stderr=subprocess.PIPE, text=False, check=False)
            wall = time.perf_counter() - started
            out.seek(0)
            signals = sum(1 for _ in out)
        if proc.returncode != 0:
            print(proc.stderr.decode(), file=sys.stderr)
            return proc.returncode
        summary = proc.stderr.decode().strip().splitlines()[-1]
        rate = args.ticks / wall
        rates.append(rate)
        print(
            f"run {run}: {args.ticks:,} ticks, {signals:,} signals, {wall:.2f}s wall "
            f"(process start included): {rate:,.0f} ticks/s"
        )
        print(f"        {summary}")
    rates.sort()
    print(
        f"backtest throughput: median {rates[len(rates) // 2]:,.0f} ticks/s, "
        f"best {rates[-1]:,.0f} ticks/s over {len(rates)} runs (one core; target 200,000)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
