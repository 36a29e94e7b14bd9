"""Backfill: a trading day of a broad market replayed through the live path while one
worker processes it."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from bench.live.common import (
    CACHE,
    cleanup,
    env_for,
    group_lag,
    processor_group,
    ready_after,
    rss_mb,
    ticks_evaluated,
    wait,
    worker,
)
from bench.live.data import broad_market
from bench.live.ingest import ingest


def backfill(rules: Path, n: int, n_symbols: int, logs: Path) -> dict[str, Any]:
    """Replaying a day through the live path: the default (bundling) ingest at full speed
    while one worker processes; the time until the worker's lag on `ticks` is 0."""
    data = CACHE / f"backfill-{n}-{n_symbols}.csv"
    if not data.exists():
        broad_market(data, n, n_symbols)
    namespace = f"bench.backfill.{uuid.uuid4().hex[:8]}."
    env = env_for(namespace, rules)
    try:
        with worker(env, logs / "backfill-process.log") as (proc, port):
            ready_after(proc, port, "the processor's /readyz", 180)
            started = time.perf_counter()
            fed = ingest(namespace, rules, data, logs)
            ingest_s = time.perf_counter() - started
            group = processor_group(namespace)
            wait(
                "the backfill to be processed",
                lambda: group_lag(group, namespace + "ticks") == 0,
                max(600.0, n / 2000),
                proc,
            )
            total = time.perf_counter() - started
            evaluated = ticks_evaluated(port)
            rss = rss_mb(proc.pid)
    finally:
        cleanup(namespace)
        shutil.rmtree(CACHE / "state" / (processor_group(namespace)), ignore_errors=True)
    return {
        "ticks": n,
        "symbols": n_symbols,
        "ingest_s": ingest_s,
        "ingest_rate": fed["rate"],
        "to_lag_zero_s": total,
        "rate": n / total,
        "evaluated": evaluated,
        "rss_mb": rss,
    }
