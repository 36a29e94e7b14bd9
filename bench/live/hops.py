"""Where tick-to-alert latency goes, hop by hop, with ticks paced at one rate.

    python -m bench.live.hops [--rate 5000] [--seconds 10] [--no-bundle]

On the running local stack (`make stack-up`), in a namespace of its own: a processor
and an alerter, ticks paced by `marketsignal ingest --rate`, and a Redis subscriber on
the alert channels. Each record-high alert seen by the subscriber is traced back along
timestamps the pipeline already carries:

- ingested: the ticks record's `x-ingested-at` header (a bundle's first tick's arrival);
- ticks appended: the ticks record's Kafka timestamp, set to the broker's append time
  (the bundle window, the ingestor's linger and its produce request);
- signal appended: the signals record's append time (the processor's fetch, batch,
  stage and produce);
- alert built: the alert's `emitted_at` (the alerter, right after its poll);
- seen: the subscriber's receive time.

All on one machine, one clock. Prints percentiles of each hop and of the whole path; a
diagnostic, it asserts nothing. Divergences are left out: the watermark holds their
ticks by design.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from bench.live.common import (
    BOOTSTRAP,
    CACHE,
    PY,
    ROOT,
    cleanup,
    env_for,
    group_lag,
    log,
    processor_group,
    read_topic,
    ready,
    scrape,
    service,
    wait,
    worker,
)
from bench.live.data import bench_rules, bench_ticks
from bench.live.latency import HISTOGRAM, Subscriber, ts_ms
from bench.live.latency_stats import histogram, histogram_quantiles, percentiles
from tests.support.services import free_port

HOPS = (
    "ingested -> ticks appended",
    "ticks -> signal appended",
    "signal -> alert built",
    "alert built -> seen",
)


def append_time(*topics: str) -> None:
    """Record timestamps set by the broker on append, not by the producer's `send`: the
    hops then split at the broker, whatever the producers' linger and queues."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, t, {"message.timestamp.type": "LogAppendTime"}
                )
                for t in topics
            ]
        )
    finally:
        admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-bundle", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the processor and alerter while paced"
    )
    args = parser.parse_args()
    n = int(args.rate * args.seconds)
    rules, data = bench_rules(), bench_ticks(n)
    namespace = f"bench.hops.{uuid.uuid4().hex[:8]}."
    logs = CACHE / f"hops-{namespace.split('.')[2]}"
    logs.mkdir(parents=True)
    env = env_for(namespace, rules)
    a_port = free_port()
    sub = Subscriber(namespace)
    sub.start()
    try:
        with (
            worker(env, logs / "process.log") as (proc, p_port),
            service(
                ["alert", "--metrics-port", str(a_port)],
                env | {"MARKETSIGNAL_API_PORT": str(free_port())},
                logs / "alert.log",
            ) as alerter,
        ):
            wait("the processor's /readyz", lambda: ready(p_port), 180, proc)
            append_time(namespace + "ticks", namespace + "signals")
            # A warm-up: the alerter joins its group once signals exist.
            before = scrape(a_port) if ready(a_port) else ""
            command = [PY, "-m", "services.cli", "ingest", str(data), "--rate", str(args.rate)]
            command += ["--metrics-port", "-1"] + (["--no-bundle"] if args.no_bundle else [])
            log(f"{n:,} ticks at {args.rate:,}/s, {'single' if args.no_bundle else 'bundles'}")
            spies = []
            if args.profile:
                for pid, name in ((proc.pid, "process"), (alerter.pid, "alert")):
                    spy = [str(Path(PY).parent / "py-spy"), "record", "-p", str(pid), "-r", "200"]
                    spy += ["-d", str(int(args.seconds)), "-f", "raw", "-o", str(logs / name)]
                    spies.append(subprocess.Popen(spy, stdout=subprocess.DEVNULL))
            started = time.time()
            run = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
            )
            for spy_proc in spies:
                spy_proc.wait(timeout=60)
            if run.returncode != 0:
                raise RuntimeError(run.stderr[-2000:])
            log(f"sent in {time.time() - started:.1f}s")
            group = processor_group(namespace)
            wait("catch-up", lambda: group_lag(group, namespace + "ticks") == 0, 300, proc)
            quiet = len(sub.received)
            time.sleep(1.5)
            while len(sub.received) != quiet:
                quiet = len(sub.received)
                time.sleep(1.0)
            after = scrape(a_port)
        sub.stop()
        origin: dict[int, tuple[float, float]] = {}
        for rec in read_topic(namespace + "ticks"):
            sent = rec.timestamp / 1000
            ingested = sent
            for name, value in rec.headers or ():
                if name == "x-ingested-at":
                    ingested = int(value) / 1000
            value = json.loads(rec.value)
            for tick in value if isinstance(value, list) else [value]:
                origin[ts_ms(tick["ts"])] = (ingested, sent)
        signal_sent: dict[tuple[str, int], float] = {}
        for rec in read_topic(namespace + "signals"):
            signal = json.loads(rec.value)
            signal_sent[(signal["kind"], ts_ms(signal["ts"]))] = rec.timestamp / 1000
        hops: dict[str, list[float]] = {h: [] for h in (*HOPS, "total")}
        trace: list[list[float]] = []
        for received, payload in sub.received:
            alert = json.loads(payload)
            if alert["kind"] != "record_high":
                continue
            at = ts_ms(alert["signal"]["ts"])
            if at not in origin or ("record_high", at) not in signal_sent:
                continue
            ingested, sent = origin[at]
            built = datetime.fromisoformat(alert["emitted_at"]).timestamp()
            marks = [ingested, sent, signal_sent[("record_high", at)], built, received]
            for name, lo, hi in zip(HOPS, marks, marks[1:], strict=False):  # marks has one more
                hops[name].append(hi - lo)
            hops["total"].append(received - ingested)
            trace.append(marks)
        out: dict[str, Any] = {k: percentiles(v) for k, v in hops.items()}
        out["alerter_histogram"] = histogram_quantiles(
            histogram(before, HISTOGRAM),
            histogram(after, HISTOGRAM),
        )
        for name, p in out.items():
            figures = " ".join(f"{k}={v:.1f}" for k, v in p.items() if k != "n")
            print(f"{name:>28} n={p.get('n', 0):>5} {figures}")
        (logs / "hops.json").write_text(json.dumps(out, indent=1))
        (logs / "trace.json").write_text(json.dumps(sorted(trace)))
        print(f"per-alert marks in {logs / 'trace.json'}")
    finally:
        cleanup(namespace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
