"""Benchmark: the live path against its limit, its ceiling and a peer, in one run.

`make bench` runs this on the real local stack (`make stack-up`) in a namespace of its
own. Every consumer reads the same topic contents, filled once by `marketsignal ingest`:

- the raw aiokafka limit (getmany + json.loads, and + orjson.loads);
- a bare faust-streaming agent that only decodes (faust's per-event ceiling);
- `marketsignal process` draining the backlog (its own ticks-evaluated counter and the
  consumer group's lag), on one tick per record and on the ingestor's tick bundles (the
  same ticks, many per record: a topic of their own, filled by the default ingest);
- a Quix Streams peer doing the same record-high detection (bench/quix_peer.py, its own
  virtualenv), its signals checked equal to the backtest's, as are the processor's;
- `marketsignal ingest` with and without bundles, each against kafka-python's own
  producer on the same bytes (acks=all, idempotent);
- a backfill: a trading day of a broad market (3M ticks over 5,000 symbols) ingested with
  bundles while a worker processes it, until its lag is 0;
- the bundles drained again with record highs alone and with every signal on (the pairs,
  an A/H listing and the three day moves), each checked against its backtest;
- tick-to-alert latency with every signal on, ticks paced at several rates, at a Redis
  subscriber and in the alerter's histogram, record highs, divergences and all alerts;
- what a live pace costs (bench/live/cost.py): CPU per process and tick-to-alert latency
  at 1k, 5k and 20k ticks/s on `make up`'s services, idle, and the Quix peer at 5k;
- a subscriber's own price levels (bench/live/levels.py): the drain with 100,000 levels
  against none, their RSS, the time from the API's answer to a level armed, and a level's
  firing latency on a symbol trading 5,000 ticks/s beside its record highs;
- the alerter (bench/bench_alerter.py) and the backtest (bench/bench_backtest.py).

It writes bench/results.json and docs/bench.png and prints the figures and the ratios.
A benchmark: it asserts nothing about speed; it fails only if a contender fails. The
machine is shared: compare the ratios of one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import uuid
from datetime import datetime
from typing import Any

from bench.live.alerter import alerter_figures
from bench.live.backfill import backfill
from bench.live.common import CACHE, ROOT, log
from bench.live.cost import cost
from bench.live.data import bench_rules, bench_rules_mix, bench_ticks
from bench.live.latency import latency
from bench.live.levels import levels_bench
from bench.live.memory import memory_and_recovery
from bench.live.report import ratios, report, targets, versions
from bench.live.throughput import Step, throughput

RESULTS = ROOT / "bench" / "results.json"
CHART = ROOT / "docs" / "bench.png"


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.live",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument(
        "--ticks", type=int, default=None, help="ticks on the topic (default 400,000; quick 40,000)"
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=[
            "quix",
            "latency",
            "cost",
            "levels",
            "alerter",
            "scale",
            "ingest",
            "memory",
            "backfill",
        ],
    )
    parser.add_argument(
        "--backfill-ticks", type=int, default=None, help="default 3,000,000; quick 300,000"
    )
    parser.add_argument("--rates", type=int, nargs="*", default=None)
    parser.add_argument(
        "--level-seconds",
        type=float,
        default=None,
        help="seconds of ticks per latency level; default 20 (quick 4): a 10 s level at "
        "5k ticks/s gives ~400 alerts, whose p99 rests on the 4 slowest",
    )
    args = parser.parse_args()
    n = args.ticks or (40_000 if args.quick else 400_000)
    rates = args.rates or ([1000, 5000] if args.quick else [1000, 2000, 5000, 10_000, 20_000])
    level_s = args.level_seconds or (4.0 if args.quick else 20.0)

    rules, data = bench_rules(), bench_ticks(n)
    lat_n = int((sum(rates) + 5000) * level_s)  # + the 5k/s level without bundles
    lat_data = CACHE / f"ticks-{lat_n}.csv"
    if "latency" not in args.skip:
        lat_data = bench_ticks(lat_n)
    run_id = uuid.uuid4().hex[:8]
    logs = CACHE / f"run-{run_id}"
    logs.mkdir(parents=True)
    results: dict[str, Any] = {
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "ticks": n,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_at_start": os.getloadavg(),
            "platform": platform.platform(),
        },
        "versions": versions(),
        "throughput": {},
    }
    log(f"run {run_id}: {n:,} ticks, logs in {logs}")
    throughput(Step(rules, data, n, args.skip, logs, results), run_id)
    if "latency" not in args.skip:
        # Every signal on (issue 21): the day moves' and the A/H listing's work is on the path.
        every = bench_rules_mix("every_signal")
        results["latency"] = latency(every, lat_data, rates, level_s, logs, single=[5000])
        results["latency"]["level_seconds"] = level_s
        results["latency"]["rules"] = "every_signal"
    if "cost" not in args.skip:
        # Issue 26: CPU per process and latency at a live pace, on `make up`'s services.
        results["cost"] = cost(
            [1000, 5000] if args.quick else [1000, 5000, 20_000],
            8.0 if args.quick else 20.0,
            logs,
            with_peer="quix" not in args.skip,
        )
    if "levels" not in args.skip:
        # Issue 22: 100,000 subscribers' levels in a drain, arming latency, a level at 5k/s.
        results["levels"] = levels_bench(args.quick, logs)
    if "memory" not in args.skip:
        log("memory: a worker with 10,000 symbols' state, and its recovery")
        results["memory"] = memory_and_recovery(
            rules, 2_000 if args.quick else 10_000, 60 if args.quick else 365, logs
        )
    if "backfill" not in args.skip:
        b_ticks = args.backfill_ticks or (300_000 if args.quick else 3_000_000)
        log(f"backfill: {b_ticks:,} ticks over 5,000 symbols through the live path")
        results["backfill"] = backfill(rules, b_ticks, 5_000, logs)
    if "alerter" not in args.skip:
        log("alerter (bench/bench_alerter.py)")
        results["alerter"] = alerter_figures(args.quick)
    results["ratios"] = ratios(results["throughput"])
    results["targets"] = targets(results)
    results["quick"] = args.quick
    # A --quick run is for development: it leaves the published figures alone.
    target, chart = (
        (CACHE / "results-quick.json", CACHE / "bench-quick.png")
        if args.quick
        else (RESULTS, CHART)
    )
    target.write_text(json.dumps(results, indent=2) + "\n")
    report(results)
    try:
        from bench.bench_chart import draw  # noqa: PLC0415 - matplotlib is optional ('.[bench]')

        draw(results, chart)
        log(f"wrote {target.relative_to(ROOT)} and {chart.relative_to(ROOT)}")
    except ImportError:
        log(f"wrote {RESULTS.relative_to(ROOT)}; no chart without matplotlib ('.[bench]')")
    return 0
