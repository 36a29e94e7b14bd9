"""The run's versions, ratios and targets, and the figures printed at its end."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from contextlib import suppress
from importlib import metadata
from typing import Any

import redis

from bench.live.common import REDIS_URL, ROOT
from bench.live.cost import print_cost
from bench.live.drain import QUIX_VENV
from bench.live.levels import print_levels

# record highs alone, every signal: the two drains issue 21's processor ratio compares
MIX_PAIR = ("record_highs", "every_signal")


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("faust-streaming", "aiokafka", "kafka-python", "orjson", "pydantic", "redis"):
        with suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    py = QUIX_VENV / "bin" / "python"
    if py.exists():
        proc = subprocess.run(
            [
                str(py),
                "-c",
                "import importlib.metadata as m; "
                "print(m.version('quixstreams'), m.version('confluent-kafka'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            out["quixstreams"], out["confluent-kafka"] = proc.stdout.split()
    out["kafka-broker"] = broker_version()
    with suppress(Exception):
        out["redis-server"] = redis.Redis.from_url(REDIS_URL).info()["redis_version"]
    return out


def broker_version() -> str:
    """The version of the broker the stack runs (the file `stack.sh` writes at start), else
    the one it would start."""
    running = ROOT / ".local" / "run" / "kafka.version"
    if running.exists():
        return running.read_text().strip()
    script = (ROOT / "deploy" / "local" / "kafka.sh").read_text()
    default = re.search(r"^DEFAULT_VERSION=(\S+)", script, re.M)
    return os.environ.get("KAFKA_VERSION") or (default.group(1) if default else "unknown")


def ratios(tp: dict[str, Any]) -> dict[str, float]:
    """The throughput figures against each other: the processor against its ceiling,
    limits and peer, bundles against single ticks, the ingestor against the raw producer."""
    proc_rate = tp["processor"]["rate"]
    out = {
        "processor_to_ceiling": proc_rate / tp["faust_bare"]["rate"],
        "processor_to_limit_json": proc_rate / tp["aiokafka_json"]["rate"],
        "processor_to_limit_orjson": proc_rate / tp["aiokafka_orjson"]["rate"],
    }
    if "quix_peer" in tp:
        out["processor_to_peer"] = proc_rate / tp["quix_peer"]["rate"]
    if "kafka_python_producer" in tp:
        out["ingest_to_kafka_python_producer"] = (
            tp["ingest"]["rate"] / tp["kafka_python_producer"]["rate"]
        )
    if "processor_2_workers" in tp:
        out["two_workers_to_one"] = tp["processor_2_workers"]["rate"] / proc_rate
    bundled_rate = tp["processor_bundles"]["rate"]
    out["processor_bundles_to_processor"] = bundled_rate / proc_rate
    out["processor_bundles_ticks_to_ceiling_events"] = bundled_rate / tp["faust_bare"]["rate"]
    if "quix_peer" in tp:
        out["processor_bundles_to_peer"] = bundled_rate / tp["quix_peer"]["rate"]
    out["ingest_bundles_to_ingest"] = tp["ingest_bundles"]["rate"] / tp["ingest"]["rate"]
    if "processor_bundles_every_signal" in tp and "processor_bundles_record_highs" in tp:
        out["every_signal_to_record_highs_processor_bundles"] = (
            tp["processor_bundles_every_signal"]["rate"]
            / tp["processor_bundles_record_highs"]["rate"]
        )
        out["every_signal_to_record_highs_backtest"] = (
            tp["backtest_every_signal"]["rate"] / tp["backtest_record_highs"]["rate"]
        )
        cpu = [tp[f"processor_bundles_{m}"].get("cpu_us_per_tick_median") for m in MIX_PAIR]
        if None not in cpu:
            # The same ratio by the worker's CPU a tick (record highs' over every signal's):
            # what the machine's waits and swings move least.
            out["every_signal_to_record_highs_processor_cpu"] = cpu[0] / cpu[1]
    if "processor_bundles_day_moves" in tp and "processor_bundles_record_highs" in tp:
        out["day_moves_to_record_highs_processor_bundles"] = (
            tp["processor_bundles_day_moves"]["rate"] / tp["processor_bundles_record_highs"]["rate"]
        )
        out["day_moves_to_record_highs_backtest"] = (
            tp["backtest_day_moves"]["rate"] / tp["backtest_record_highs"]["rate"]
        )
    if "kafka_python_producer_bundles" in tp:
        out["ingest_bundles_to_kafka_python_producer_bundles"] = (
            tp["ingest_bundles"]["rate"] / tp["kafka_python_producer_bundles"]["rate"]
        )
    for suffix in ("", "_bundles"):
        same = tp.get(f"kafka_python_producer_ingest_settings{suffix}")
        if same is not None:
            out[f"ingest{suffix}_to_kafka_python_producer_ingest_settings{suffix}"] = (
                tp[f"ingest{suffix}"]["rate"] / same["rate"]
            )
    return out


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issues' targets (15, 21, 22, 26), read from this run's figures."""
    tp = results["throughput"]
    out: dict[str, dict[str, Any]] = {}

    def add(name: str, figure: float, target: float, higher: bool = True) -> None:
        met = figure >= target if higher else figure <= target
        out[name] = {"figure": figure, "target": target, "met": met}

    add("processor_bundles_ticks_per_s", tp["processor_bundles"]["rate"], 100_000)
    if "quix_peer" in tp:
        add("processor_bundles_to_peer", results["ratios"]["processor_bundles_to_peer"], 1.2)
    add("ingest_bundles_ticks_per_s", tp["ingest_bundles"]["rate"], 100_000)
    if "processor_bundles_every_signal" in tp:
        ratios = results["ratios"]
        add(
            "every_signal_processor_bundles_ticks_per_s",
            tp["processor_bundles_every_signal"]["rate"],
            150_000,
        )
        add(
            "every_signal_to_record_highs_processor_bundles",
            ratios["every_signal_to_record_highs_processor_bundles"],
            0.75,
        )
        add(
            "every_signal_to_record_highs_backtest",
            ratios["every_signal_to_record_highs_backtest"],
            0.8,
        )
    for lv in results.get("latency", {}).get("levels", []):
        if lv["rate"] == 5000 and lv["bundles"]:
            p99 = lv["subscriber"]["record_high"].get("p99_ms")
            if p99 is not None:
                add("p99_ms_at_5k_with_bundles", p99, 50, higher=False)
            every = lv["subscriber"].get("all", {}).get("p99_ms")
            if every is not None and results["latency"].get("rules") == "every_signal":
                add("p99_ms_at_5k_with_bundles_every_signal_all_alerts", every, 50, higher=False)
    figures = results.get("cost")
    if figures is not None:
        add("broker_idle_share_of_a_core", figures["idle"]["broker"], 0.05, higher=False)
        for lv in figures["levels"]:
            if lv["rate"] == 5000:
                add("cpu_at_5k_all_four_share_of_a_core", lv["cpu"]["total"], 0.8, higher=False)
                for where in ("histogram", "subscriber"):
                    p99 = lv[where].get("p99_ms")
                    if p99 is not None:
                        add(f"p99_ms_at_5k_make_up_{where}", p99, 50, higher=False)
    lv = results.get("levels")
    if lv is not None:
        add("levels_drain_to_none", lv["drain"]["ratio"], 0.9)
        add("levels_rss_growth_mb", lv["drain"]["rss_growth_mb"], 100, higher=False)
        add("levels_armed_p99_ms", lv["arming"]["armed"]["p99_ms"], 1000, higher=False)
        add("levels_disarmed_p99_ms", lv["arming"]["disarmed"]["p99_ms"], 1000, higher=False)
        p99 = lv["latency"]["price_level"].get("p99_ms")
        if p99 is not None:
            add("levels_firing_p99_ms_at_5k", p99, 50, higher=False)
    return out


def report(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print()
    print(
        f"{results['ticks']:,} ticks, {machine['cpus']} cores, "
        f"load {machine['load_avg_at_start'][0]:.1f} at start"
    )
    for name, fig in results["throughput"].items():
        print(f"  {name:<24} {fig['rate']:>12,.0f} /s")
    for name, value in results["ratios"].items():
        print(f"  {name:<34} {value:.2f}")
    for name, value in results.get("checks", {}).items():
        print(f"  check {name}: {value}")
    for name, value in results.get("bundles", {}).items():
        print(f"  bundles {name}: {value:,.1f}")
    for name, target in results.get("targets", {}).items():
        verdict = "met" if target["met"] else "NOT MET"
        print(f"  target {name}: {target['figure']:,.2f} vs {target['target']} ({verdict})")
    if "backfill" in results:
        b = results["backfill"]
        print(
            f"  backfill {b['ticks']:,} ticks / {b['symbols']:,} symbols: "
            f"ingest {b['ingest_s']:.1f}s, "
            f"lag 0 after {b['to_lag_zero_s']:.1f}s ({b['rate']:,.0f} ticks/s end to end)"
        )
    for lv in results.get("latency", {}).get("levels", []):
        sub = lv["subscriber"]
        rh, dv, hist = sub["record_high"], sub["index_divergence"], lv["histogram"]
        every = sub.get("all", {})
        print(
            f"  latency at {lv['rate']:>6,}/s {'bundles' if lv['bundles'] else 'single '} "
            f"(achieved {lv['achieved_rate']:,.0f}/s): "
            "record highs "
            f"n={rh.get('n')} p50 {rh.get('p50_ms', 0):.1f} p99 {rh.get('p99_ms', 0):.1f} ms | "
            f"divergences n={dv.get('n')} p50 {dv.get('p50_ms', 0):.1f} "
            f"p99 {dv.get('p99_ms', 0):.1f} ms | all alerts n={every.get('n')} "
            f"p99 {every.get('p99_ms', 0):.1f} ms | alerter histogram n={hist.get('n')} "
            f"p50 {hist.get('p50_ms', 0):.1f} p99 {hist.get('p99_ms', 0):.1f} ms"
        )
    if "latency" in results:
        passes = results["latency"]["p99_passes_100ms_at_rate"]
        top = max((lv["rate"] for lv in results["latency"]["levels"]), default=0)
        print(
            f"  p99 passes 100 ms at about {passes:,.0f} ticks/s"
            if passes is not None
            else f"  p99 stays under 100 ms up to the highest level tried, {top:,}/s"
        )
    if "cost" in results:
        print_cost(results["cost"])
    if "levels" in results:
        print_levels(results["levels"])
    for name, value in results.get("memory", {}).items():
        print(f"  memory {name}: {value:,.1f}")
    for row in results.get("alerter", []):
        print(
            f"  alerter {row['subscriptions']:>6} subs: {row['alerts_per_s']:,} alerts/s, "
            f"{row['deliveries_per_s']:,} deliveries/s"
        )
