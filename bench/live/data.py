"""Generated data beyond bench_backtest's ticks: a broad market's symbols and a trading
day of ticks over them."""

from __future__ import annotations

import random
from pathlib import Path

from bench.bench_backtest import (
    INDICES,
    RULES,
    RULES_ALL,
    RULES_DAY_MOVES,
    RULES_RECORD_HIGHS,
    generate,
)
from bench.live.common import CACHE


def bench_rules() -> Path:
    """The benchmark's rules file (bench_backtest's two pairs), in the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    rules = CACHE / "bench-rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    return rules


def bench_rules_mix(name: str) -> Path:
    """The signal mixes issue 21's ratios compare: `record_highs` alone, `day_moves`
    (record highs and the three day moves), or `every_signal` (record highs, the pairs,
    an A/H listing and the three day moves)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    rules = CACHE / f"bench-rules-{name}.toml"
    text = {
        "record_highs": RULES_RECORD_HIGHS,
        "day_moves": RULES_DAY_MOVES,
        "every_signal": RULES_ALL,
    }[name]
    rules.write_text(text, encoding="utf-8")
    return rules


def bench_ticks(n: int) -> Path:
    """bench_backtest's `n` generated ticks, made once and kept in the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    data = CACHE / f"ticks-{n}.csv"
    if not data.exists():
        generate(data, n)
    return data


def symbol_universe(n: int) -> list[str]:
    """Realistic breadth: HK listings, then Shanghai and Shenzhen A-shares."""
    hk = [f"{i:04d}.HK" for i in range(1, 2601)]
    sh = [f"{600000 + i}.SH" for i in range(2500)]
    sz = [f"{i:06d}.SZ" for i in range(1, 2501)]
    more = [f"{i:06d}.BJ" for i in range(max(0, n - 7600))]
    return (hk + sh + sz + more)[:n]


def broad_market(path: Path, n: int, n_symbols: int, seed: int = 15) -> None:
    """A trading day of a broad market: `n` ticks over `n_symbols` symbols (the pairs'
    indices among them), 5.5 hours of increasing timestamps, symbols drawn at random."""
    rng = random.Random(seed)
    symbols = symbol_universe(n_symbols - len(INDICES)) + INDICES
    prices = {s: rng.uniform(5, 500) for s in symbols}
    ms = 1_735_781_400_000  # 2025-01-02T01:30:00Z
    step = max(1, round(5.5 * 3600 * 1000 / n))
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("symbol,ts,price,volume,kind\n")
        for _ in range(n):
            s = symbols[rng.randrange(len(symbols))]
            prices[s] *= 1.0 + rng.gauss(0.0001, 0.004)
            ms += rng.randint(1, 2 * step)
            kind = "index" if s in INDICES else "trade"
            fh.write(f"{s},{ms},{prices[s]:.4f},{rng.randint(1, 5000)},{kind}\n")
    tmp.rename(path)
