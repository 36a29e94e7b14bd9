"""Memory and recovery: RSS of a worker holding many symbols' 52-week state, and the
time a fresh worker takes to recover it from the changelog."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from bench.live.common import (
    BOOTSTRAP,
    cleanup,
    env_for,
    log,
    processor_group,
    ready_after,
    rss_mb,
    ticks_evaluated,
    wait,
    worker,
)
from bench.live.data import symbol_universe
from bench.live.ingest import ingest
from services.detection.rules import Rules
from services.detection.trackers import Trackers
from services.processor.symbol_state import SymbolState


def memory_and_recovery(rules: Path, n_symbols: int, days: int, logs: Path) -> dict[str, Any]:
    """RSS of a worker holding `n_symbols` symbols' state, each with `days` days of daily
    highs (the 52-week window full), and the time to recover it after a restart.

    The state is written to the symbol table's changelog as the processor writes it (the
    trackers are fed one tick a day by the detectors themselves), then a worker starts on
    it: time to /readyz is the recovery, RSS is read when ready and again after one tick
    of every symbol has brought every tracker into its cache.
    """
    namespace = f"bench.mem.{uuid.uuid4().hex[:8]}."
    trackers = Trackers(Rules.load(rules))
    rng = random.Random(5)
    symbols = symbol_universe(n_symbols)
    day_us = 86_400_000_000
    start_us = 1_735_689_600_000_000 - days * day_us  # a year before 2025-01-01
    changelog = f"{processor_group(namespace)}-symbol-state-changelog"
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(changelog, 6, 1, topic_configs={"cleanup.policy": "compact"})])
    admin.close()
    producer = KafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, batch_size=1 << 20
    )
    started = time.perf_counter()
    total_bytes = 0
    for symbol in symbols:
        tracker = trackers.symbol(symbol)
        price = rng.uniform(5, 500)
        for d in range(days):
            price *= 1 + rng.gauss(0.0003, 0.02)
            tracker.update(start_us + d * day_us + 7_200_000_000, price)
        value = orjson.dumps(SymbolState.before_ticks(tracker, None).to_json())
        total_bytes += len(value)
        producer.send(changelog, key=symbol.encode(), value=value)
    producer.flush()
    producer.close()
    built_s = time.perf_counter() - started
    log(f"memory: {n_symbols:,} states written ({total_bytes / n_symbols:,.0f} bytes each)")
    env = env_for(namespace, rules)
    out: dict[str, Any] = {
        "symbols": n_symbols,
        "days_per_symbol": days,
        "state_bytes_per_symbol": total_bytes / n_symbols,
        "changelog_write_s": built_s,
    }
    with worker(env, logs / "memory-process.log") as (proc, port):
        out["recovery_to_ready_s"] = ready_after(
            proc, port, "the worker to recover its tables", 900
        )
        out["rss_ready_mb"] = rss_mb(proc.pid)
        ticks = logs / "memory-ticks.csv"
        ts_ms = start_us // 1000 + days * 86_400_000 + 3_600_000
        lines = [
            f"{s},{ts_ms + i},{rng.uniform(5, 500):.4f},1,trade" for i, s in enumerate(symbols)
        ]
        ticks.write_text("symbol,ts,price,volume,kind\n" + "\n".join(lines) + "\n")
        ingest(namespace, rules, ticks, logs)
        wait("one tick of every symbol", lambda: ticks_evaluated(port) >= n_symbols, 600, proc)
        out["rss_after_every_symbol_ticked_mb"] = rss_mb(proc.pid)
    # Restart: the same state, recovered by a fresh worker (its local state is memory).
    with worker(env, logs / "memory-restart.log") as (proc, port):
        out["restart_recovery_to_ready_s"] = ready_after(
            proc, port, "the restarted worker to recover", 900
        )
        out["restart_rss_ready_mb"] = rss_mb(proc.pid)
    empty = f"bench.mem0.{uuid.uuid4().hex[:8]}."
    with worker(env_for(empty, rules), logs / "memory-empty.log") as (proc, port):
        out["empty_start_to_ready_s"] = ready_after(proc, port, "an empty worker to be ready", 300)
        out["empty_rss_ready_mb"] = rss_mb(proc.pid)
    cleanup(namespace)
    cleanup(empty)
    return out
