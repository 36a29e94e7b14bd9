"""Issue 24's figures: what replication costs on this machine. Not a target.

The same two measurements on three deployments, in one run:

- **single broker, RF 1**: the local stack's broker, the default for `make run`;
- **3-node cluster, RF 1**: topics with one replica on the cluster (deploy/local/cluster.sh),
  to tell the cost of three JVMs sharing two cores from the cost of replication;
- **3-node cluster, RF 3, min ISR 2**: the production topology.

Each measurement, per deployment:

- **drain**: 400,000 ticks in tick bundles (the ingestor's default) filled by `marketsignal
  ingest` (acks=all, idempotent: its rate is the produce side's cost of replication), then
  drained by one worker with record highs and divergences (the processor's own counter),
  its record highs checked equal to the backtest's;
- **latency**: every signal on, ticks paced at 5,000/s in bundles, 20 s of warm-up dropped
  and 20 s measured: tick-to-alert at a Redis subscriber and in the alerter's histogram
  (bench/live/latency.py).

The deployments take turns (A B C C B A, for each measurement) so that a drift of the shared
machine falls on all alike; each leg runs in a process of its own with the deployment's
bootstrap and topic settings in its environment, as a user's services would. All four
brokers stay up for the whole run: an idle broker costs every leg the same. Medians.
The cluster is started if it does not run (`make cluster-up`), and then stopped again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

from bench.live.common import (
    CACHE,
    PY,
    ROOT,
    alternated,
    cleanup,
    log,
    processor_group,
    read_topic,
    ticks_in,
)
from bench.live.cost import KAFKA_PID, cpu_shares
from bench.live.data import bench_rules, bench_rules_mix, bench_ticks
from bench.live.drain import backtest, processor_drain
from bench.live.ingest import ingest
from bench.live.latency import latency
from bench.live.throughput import record_highs

CLUSTER = ROOT / "deploy" / "local" / "cluster.sh"
RESULTS = ROOT / "bench" / "results-cluster.json"
RATE = 5000


def deployments() -> dict[str, dict[str, str]]:
    """Each deployment's settings, as its services' environment carries them."""
    nodes = subprocess.run(
        ["bash", str(CLUSTER), "bootstrap"], capture_output=True, text=True, check=True
    ).stdout.strip()
    single = os.environ.get("MARKETSIGNAL_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    return {
        "single_rf1": {"bootstrap": single, "rf": "1", "min_isr": "1"},
        "cluster_rf1": {"bootstrap": nodes, "rf": "1", "min_isr": "1"},
        "cluster_rf3": {"bootstrap": nodes, "rf": "3", "min_isr": "2"},
    }


def drain_leg(n: int, logs: Path) -> dict[str, Any]:
    """Fill a topic of its own with `n` ticks in bundles, drain it with one worker."""
    rules, data = bench_rules(), bench_ticks(n)
    namespace = f"bench.cl.{uuid.uuid4().hex[:8]}."
    try:
        filled = ingest(namespace, rules, data, logs, bundles=True)
        records = read_topic(namespace + "ticks")
        ticks = sum(ticks_in(r.value) for r in records)
        if ticks != n:
            raise RuntimeError(f"the topic holds {ticks} ticks, not {n}")
        drained = processor_drain(namespace, rules, n, logs)
        signals = [r.value for r in read_topic(namespace + "signals")]
    finally:
        cleanup(namespace)
        shutil.rmtree(CACHE / "state" / processor_group(namespace), ignore_errors=True)
    return {
        "ingest_rate": filled["rate"],
        "drain_rate": drained["rate"],
        "lag_drain_wall_s": drained["lag_drain_wall_s"],
        "record_highs": record_highs(signals),
    }


def latency_leg(seconds: float, logs: Path) -> dict[str, Any]:
    """Tick-to-alert with every signal on, paced at RATE ticks/s in bundles: `seconds` at
    that rate to warm up (dropped: fresh services' first seconds), then `seconds` measured."""
    data = bench_ticks(int(RATE * seconds * 2))
    rules = bench_rules_mix("every_signal")
    figures = latency(rules, data, [RATE, RATE], seconds, logs, single=[])
    level = figures["levels"][1]
    return {
        "achieved_rate": level["achieved_rate"],
        "subscriber": level["subscriber"]["all"],
        "histogram": level["histogram"],
    }


def idle_brokers(seconds: float) -> dict[str, float]:
    """Each broker's share of a core with no client: what every leg pays alike."""
    pids = {"single": int(KAFKA_PID.read_text())}
    for node in (1, 2, 3):
        found = subprocess.run(
            ["bash", str(CLUSTER), "pid", str(node)], capture_output=True, text=True, check=True
        )
        pids[f"node-{node}"] = int(found.stdout.strip())
    return {k: round(v, 3) for k, v in cpu_shares(pids, seconds).items()}


def run_leg(kind: str, deployment: dict[str, str], args: argparse.Namespace, logs: Path) -> Any:
    """One leg in a process of its own: the bench's modules read the bootstrap at import."""
    out = logs / f"leg-{uuid.uuid4().hex[:8]}.json"
    env = dict(os.environ)
    env.update(
        MARKETSIGNAL_KAFKA_BOOTSTRAP=deployment["bootstrap"],
        MARKETSIGNAL_REPLICATION_FACTOR=deployment["rf"],
        MARKETSIGNAL_MIN_INSYNC_REPLICAS=deployment["min_isr"],
    )
    command = [PY, "-m", "bench.live.cluster", "--leg", kind, "--out", str(out)]
    command += ["--ticks", str(args.ticks), "--seconds", str(args.seconds), "--logs", str(logs)]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return json.loads(out.read_text())


def summary(legs: list[dict[str, Any]], highs: list[str]) -> dict[str, Any]:
    drains = [leg for leg in legs if "drain_rate" in leg]
    lats = [leg for leg in legs if "subscriber" in leg]
    return {
        "drain_rate": statistics.median(d["drain_rate"] for d in drains),
        "drain_rates": [round(d["drain_rate"]) for d in drains],
        "ingest_rate": statistics.median(d["ingest_rate"] for d in drains),
        "record_highs_equal_backtest": all(d["record_highs"] == highs for d in drains),
        "p50_ms": statistics.median(x["subscriber"]["p50_ms"] for x in lats),
        "p99_ms": statistics.median(x["subscriber"]["p99_ms"] for x in lats),
        "p99s_ms": [round(x["subscriber"]["p99_ms"], 1) for x in lats],
        "histogram_p99_ms": statistics.median(x["histogram"]["p99_ms"] for x in lats),
        "alerts": sum(x["subscriber"]["n"] for x in lats),
        "achieved_rate": statistics.median(x["achieved_rate"] for x in lats),
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    logs = CACHE / f"cluster-run-{uuid.uuid4().hex[:8]}"
    logs.mkdir(parents=True)
    load = os.getloadavg()
    log(f"cluster: load {load[0]:.2f} at start, logs in {logs}")
    status = subprocess.run(
        ["bash", str(CLUSTER), "status"], check=False, capture_output=True, text=True
    )
    started = " up " not in status.stdout  # no node ran: this run starts and stops them
    subprocess.run(["bash", str(CLUSTER), "up"], check=True, stdout=subprocess.DEVNULL)
    try:
        return measure(args, logs, load)
    finally:
        if started:
            subprocess.run(["bash", str(CLUSTER), "down"], check=False, stdout=subprocess.DEVNULL)


def measure(
    args: argparse.Namespace, logs: Path, load: tuple[float, float, float]
) -> dict[str, Any]:
    deps = deployments()
    idle = idle_brokers(10.0)
    log(f"cluster: idle brokers, share of a core: {idle}")
    out = logs / "backtest.jsonl"
    backtest(bench_ticks(args.ticks), bench_rules(), out)
    highs = record_highs(out.read_text().splitlines())
    turns = alternated(tuple(deps), args.runs)
    legs: dict[str, list[dict[str, Any]]] = {name: [] for name in deps}
    for kind in ("drain", "latency"):
        for name in turns:
            log(f"cluster: {kind} on {name.replace('_', ' ')}")
            legs[name].append(run_leg(kind, deps[name], args, logs))
    figures: dict[str, Any] = {
        "load_avg_at_start": load,
        "ticks": args.ticks,
        "rate": RATE,
        "seconds": args.seconds,
        "runs": args.runs,
        "backtest_record_highs": len(highs),
        "idle_broker_cpu": idle,
        "deployments": {name: summary(legs[name], highs) for name in deps},
    }
    base = figures["deployments"]["single_rf1"]
    for d in figures["deployments"].values():
        d["drain_vs_single"] = d["drain_rate"] / base["drain_rate"]
        d["ingest_vs_single"] = d["ingest_rate"] / base["ingest_rate"]
    return figures


def print_cluster(figures: dict[str, Any]) -> None:
    for name, d in figures["deployments"].items():
        print(
            f"  {name.replace('_', ' '):12}: drain {d['drain_rate']:,.0f} ticks/s "
            f"({d['drain_vs_single']:.2f}x single; runs {d['drain_rates']}), ingest "
            f"{d['ingest_rate']:,.0f} ticks/s ({d['ingest_vs_single']:.2f}x), record highs "
            f"equal to the backtest: {d['record_highs_equal_backtest']}; at "
            f"{figures['rate']:,}/s p50 {d['p50_ms']:.1f} p99 {d['p99_ms']:.1f} ms "
            f"(runs {d['p99s_ms']}; alerter histogram p99 {d['histogram_p99_ms']:.0f} ms)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live.cluster", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--ticks", type=int, default=None, help="drain ticks (400,000)")
    parser.add_argument("--seconds", type=float, default=None, help="paced seconds (20)")
    parser.add_argument("--runs", type=int, default=None, help="legs per deployment (2)")
    parser.add_argument("--leg", choices=["drain", "latency"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--logs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.ticks = args.ticks or (40_000 if args.quick else 400_000)
    args.seconds = args.seconds or (4.0 if args.quick else 20.0)
    args.runs = args.runs or (1 if args.quick else 2)
    if args.leg:
        done = (
            drain_leg(args.ticks, args.logs)
            if args.leg == "drain"
            else latency_leg(args.seconds, args.logs)
        )
        args.out.write_text(json.dumps(done))
        return 0
    figures = bench(args)
    target = CACHE / "results-cluster-quick.json" if args.quick else RESULTS
    target.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"  idle brokers (share of a core): {figures['idle_broker_cpu']}")
    print_cluster(figures)
    log(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        raise SystemExit(main())
