"""What the pipeline costs at a live market's pace (issue 26): CPU per process and
tick-to-alert latency, ticks paced at a few rates, on `make up`'s services.

    python -m bench.live.cost [--rates 1000 5000 20000] [--seconds 20] [--no-peer]

The processor and the alerter run as `make up` runs them (deploy/local/services.sh:
supervisord, the same commands and defaults), in a namespace of their own, with the
every-signal rules of issue 21 and supervisord's files and the services' ports apart, so
a running `make up` is left alone. The ingestor is `marketsignal ingest FILE --rate R`
with its defaults (tick bundles). For each rate, after a 5 s warm-up, a steady window:

- CPU of each process (the broker, processor, alerter, ingestor) from /proc, as a share
  of one core, and the four together;
- tick-to-alert latency in the alerter's histogram and at a Redis subscriber (every
  alert matched to its tick's ingest time, as bench/live/latency.py does).

Idle first: the services up, no ticks, the broker's share (issue 26: <= 5% of a core).
Then the Quix Streams peer (bench/quix_peer.py, record highs) at 5,000 ticks/s one per
record on a topic of its own: its CPU, the broker's and the ingestor's, and its latency
(the signal record's time against its tick's).

A benchmark: it prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from bench.live.common import (
    BOOTSTRAP,
    CACHE,
    PY,
    ROOT,
    cleanup,
    cpu_seconds,
    env_for,
    group_lag,
    log,
    processor_group,
    read_topic,
    ready,
    scrape,
    wait,
)
from bench.live.data import bench_rules_mix, bench_ticks
from bench.live.drain import QUIX_VENV, quix_available
from bench.live.latency import HISTOGRAM, Subscriber, tick_origins, ts_ms
from bench.live.latency_stats import histogram, histogram_quantiles, percentiles
from tests.support.services import free_port

SERVICES = ROOT / "deploy" / "local" / "services.sh"
KAFKA_PID = ROOT / ".local" / "run" / "kafka.pid"
WARM_S = 5.0


def cpu_shares(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's share of one core over the next `seconds`, and their total."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    elapsed = time.monotonic() - started
    shares: dict[str, float] = {}
    for name, pid in pids.items():
        a, b = before[name], after[name]
        if a is None or b is None:
            raise RuntimeError(f"{name} (pid {pid}) exited during the measurement")
        shares[name] = (b - a) / elapsed
    shares["total"] = sum(shares.values())
    return shares


class MakeUpServices:
    """The processor and alerter of `make up`, in `namespace`, with supervisord's socket,
    pid file and logs under `home` and the services' ports free ones."""

    def __init__(self, namespace: str, rules: Path, home: Path) -> None:
        self.home = home
        self.metrics = {"processor": free_port(), "alerter": free_port()}
        empty = home / "empty.csv"
        home.mkdir(parents=True, exist_ok=True)
        empty.write_text("symbol,ts,price,volume,kind\n")
        self.env = env_for(
            namespace,
            rules,
            SV_RUN=str(home / "run"),
            SV_LOGS=str(home / "logs"),
            FEED=str(empty),  # services.sh starts the ingestor once on it: nothing to send
            HISTORY="",
            MARKETSIGNAL_PROCESSOR_METRICS_PORT=str(self.metrics["processor"]),
            MARKETSIGNAL_PROCESSOR_WEB_PORT=str(free_port()),
            MARKETSIGNAL_ALERTER_METRICS_PORT=str(self.metrics["alerter"]),
            MARKETSIGNAL_API_PORT=str(free_port()),
            MARKETSIGNAL_INGESTOR_METRICS_PORT=str(free_port()),
        )
        # The state of `make up` proper stays apart from this run's.
        self.env["MARKETSIGNAL_STATE_DIR"] = str(home / "state")

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            ["bash", str(SERVICES), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout + done.stderr

    def pid(self, program: str) -> int:
        return int(self.ctl("ctl", "pid", program).strip())

    def __enter__(self) -> MakeUpServices:
        out = self.ctl("up")
        if "RUNNING" not in out:
            raise RuntimeError(f"services.sh up: {out[-2000:]}")
        wait("the processor's /readyz", lambda: ready(self.metrics["processor"]), 180)
        wait("the alerter's /readyz", lambda: ready(self.metrics["alerter"]), 180)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.ctl("down")


@contextmanager
def paced_ingest(env: dict[str, str], data: Path, rate: int, log_to: Path, *extra: str) -> Any:
    """`marketsignal ingest DATA --rate RATE` with its defaults, running."""
    with log_to.open("wb") as fh:
        proc = subprocess.Popen(
            [PY, "-m", "services.cli", "ingest", str(data), "--rate", str(rate), *extra],
            cwd=ROOT,
            env=env | {"MARKETSIGNAL_INGESTOR_METRICS_PORT": str(free_port())},
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
            if proc.wait(timeout=600) != 0:
                raise RuntimeError(f"ingest failed; see {log_to}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def slices(data: Path, counts: list[int], logs: Path) -> list[tuple[Path, tuple[int, int]]]:
    """Consecutive slices of the generated ticks, one file per level, with the first and
    last tick's ts (ms): an alert's tick is found by its ts."""
    lines = data.read_text().splitlines()
    header, body = lines[0], lines[1:]
    out, at = [], 0
    for i, n in enumerate(counts):
        part = logs / f"cost-{i}.csv"
        part.write_text("\n".join([header, *body[at : at + n]]) + "\n")
        out.append((part, (int(body[at].split(",")[1]), int(body[at + n - 1].split(",")[1]))))
        at += n
    return out


def level(
    services: MakeUpServices,
    namespace: str,
    sub: Subscriber,
    part: Path,
    rate: int,
    seconds: float,
    logs: Path,
) -> dict[str, Any]:
    """One paced rate: CPU and the alerter's histogram over the steady window."""
    a_port = services.metrics["alerter"]
    pids = {
        "broker": int(KAFKA_PID.read_text()),
        "processor": services.pid("processor"),
        "alerter": services.pid("alerter"),
    }
    with paced_ingest(services.env, part, rate, logs / f"cost-ingest-{rate}.log") as proc:
        time.sleep(WARM_S)
        before = scrape(a_port)
        window = (time.time(), time.time() + seconds)
        shares = cpu_shares(pids | {"ingestor": proc.pid}, seconds)
        after = scrape(a_port)
    wait(
        "the processor to catch up",
        lambda: group_lag(processor_group(namespace), namespace + "ticks") == 0,
        300,
    )
    time.sleep(1.5)
    return {
        "rate": rate,
        "cpu": shares,
        "histogram": histogram_quantiles(histogram(before, HISTOGRAM), histogram(after, HISTOGRAM)),
        "window": window,
        "received_from": len(sub.received),
    }


def idle(services: MakeUpServices, seconds: float) -> dict[str, float]:
    time.sleep(WARM_S)
    return cpu_shares(
        {
            "broker": int(KAFKA_PID.read_text()),
            "processor": services.pid("processor"),
            "alerter": services.pid("alerter"),
        },
        seconds,
    )


def subscriber_latency(
    sub: Subscriber, origin: dict[int, float], window: tuple[float, float]
) -> dict[str, Any]:
    """Receive time minus ingest time of every alert received in the steady window."""
    values: list[float] = []
    for received, payload in sub.received:
        if not window[0] <= received <= window[1]:
            continue
        alert = json.loads(payload)
        sent = origin.get(ts_ms(alert["signal"]["ts"]))
        if sent is not None:
            values.append(received - sent)
    return percentiles(values)


def peer(data: Path, rate: int, seconds: float, logs: Path) -> dict[str, Any]:
    """The Quix peer consuming ticks paced at `rate`, one per record (it reads no
    bundles): CPU over the steady window, latency from each record high's signal record
    time to its tick record's."""
    namespace = f"bench.costq.{uuid.uuid4().hex[:8]}."
    rules = bench_rules_mix("record_highs")
    env = env_for(namespace, rules)
    n = int(rate * (WARM_S + seconds + 2))
    result = logs / "cost-quix.json"
    topic, signals = namespace + "ticks", namespace + "quix.signals"
    # The topic exists before the peer subscribes: one record ingested first.
    first = logs / "cost-quix-first.csv"
    lines = data.read_text().splitlines()
    first.write_text("\n".join(lines[:2]) + "\n")
    subprocess.run(
        [PY, "-m", "services.cli", "ingest", str(first), "--no-bundle", "--metrics-port", "-1"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    # Quix gives an output record its input's timestamp: the broker's append time is
    # when the peer's signal really landed.
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        admin.create_topics(
            [NewTopic(signals, 6, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})]
        )
    finally:
        admin.close()
    part = logs / "cost-quix.csv"
    part.write_text("\n".join([lines[0], *lines[2 : 2 + n]]) + "\n")
    command = [str(QUIX_VENV / "bin" / "python"), "bench/quix_peer.py", "--bootstrap", BOOTSTRAP]
    command += ["--topic", topic, "--signals", signals, "--count", str(n + 1)]
    group = f"bench-quix-{uuid.uuid4().hex[:8]}"
    command += ["--config", str(rules), "--out", str(result), "--group", group]
    with (logs / "cost-quix.log").open("wb") as fh:
        quix = subprocess.Popen(
            command, cwd=ROOT, env=env | {"PYTHONPATH": str(ROOT)}, stdout=fh, stderr=fh
        )
        try:
            # Ticks flow once the peer is running: its group joined, its state store
            # open and the first record processed and committed.
            wait(
                "the Quix peer to commit the first record",
                lambda: group_lag(group, topic) == 0,
                120,
                quix,
            )
            with paced_ingest(
                env, part, rate, logs / "cost-quix-ingest.log", "--no-bundle"
            ) as proc:
                time.sleep(WARM_S)
                window = (time.time(), time.time() + seconds)
                shares = cpu_shares(
                    {"broker": int(KAFKA_PID.read_text()), "peer": quix.pid, "ingestor": proc.pid},
                    seconds,
                )
            quix.wait(timeout=300)
        finally:
            if quix.poll() is None:
                quix.kill()
                quix.wait()

    tick_time = {}
    for rec in read_topic(topic):
        tick = json.loads(rec.value)
        tick_time[ts_ms(tick["ts"])] = rec.timestamp / 1000
    delays = []
    for rec in read_topic(signals):
        signal = json.loads(rec.value)
        sent = tick_time.get(ts_ms(signal["ts"]))
        at = rec.timestamp / 1000
        if sent is not None and window[0] <= at <= window[1]:
            delays.append(at - sent)
    cleanup(namespace)
    return {"rate": rate, "cpu": shares, "signal_latency": percentiles(delays)}


def cost(rates: list[int], seconds: float, logs: Path, *, with_peer: bool = True) -> dict[str, Any]:
    namespace = f"bench.cost.{uuid.uuid4().hex[:8]}."
    rules = bench_rules_mix("every_signal")
    counts = [int(r * (WARM_S + seconds + 2)) for r in rates]
    data = bench_ticks(sum(counts) + 10)
    parts = slices(data, counts, logs)
    out: dict[str, Any] = {"rules": "every_signal", "seconds": seconds, "levels": []}
    sub = Subscriber(namespace)
    sub.start()
    try:
        with MakeUpServices(namespace, rules, CACHE / f"cost-{namespace.strip('.')}") as svc:
            log(f"cost: idle, {seconds:.0f} s")
            out["idle"] = idle(svc, seconds)
            for rate, (part, _range) in zip(rates, parts, strict=True):
                log(f"cost: {rate:,} ticks/s, {WARM_S:.0f} s warm-up and {seconds:.0f} s measured")
                out["levels"].append(level(svc, namespace, sub, part, rate, seconds, logs))
    finally:
        sub.stop()
    origin = tick_origins(namespace + "ticks")
    for lv in out["levels"]:
        lv["subscriber"] = subscriber_latency(sub, origin, tuple(lv.pop("window")))
        lv.pop("received_from")
    cleanup(namespace)
    if with_peer and quix_available():
        log(f"cost: the Quix peer at 5,000 ticks/s, one per record, {seconds:.0f} s")
        out["peer"] = peer(data, 5000, seconds, logs)
    return out


def print_cost(figures: dict[str, Any]) -> None:
    names = ["broker", "processor", "ingestor", "alerter", "total"]
    print("\nCPU, share of one core (steady window), and tick-to-alert latency")
    heads = " ".join(f"{n:>9}" for n in names)
    print(f"{'rate':>8} {heads}   per 1k/s   hist p50/p99   sub p50/p99")
    idle = figures["idle"]
    print(f"{'idle':>8} " + " ".join(f"{idle.get(n, 0) * 100:8.1f}%" for n in names))
    for lv in figures["levels"]:
        c, h, s = lv["cpu"], lv["histogram"], lv["subscriber"]
        print(
            f"{lv['rate']:>8,} "
            + " ".join(f"{c[n] * 100:8.1f}%" for n in names)
            + f"   {c['total'] / lv['rate'] * 1000 * 100:6.1f}%"
            + f"   {h.get('p50_ms', 0):5.1f}/{h.get('p99_ms', 0):5.1f} ms"
            + f"   {s.get('p50_ms', 0):5.1f}/{s.get('p99_ms', 0):5.1f} ms"
        )
    if "peer" in figures:
        p = figures["peer"]
        c, s = p["cpu"], p["signal_latency"]
        print(
            f"Quix peer at {p['rate']:,}/s (one per record, record highs): peer "
            f"{c['peer'] * 100:.1f}%, broker {c['broker'] * 100:.1f}%, ingestor "
            f"{c['ingestor'] * 100:.1f}%, total {c['total'] * 100:.1f}%; signal latency "
            f"p50 {s.get('p50_ms', 0):.1f} ms, p99 {s.get('p99_ms', 0):.1f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live.cost", description=__doc__)
    parser.add_argument("--rates", type=int, nargs="*", default=[1000, 5000, 20_000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    logs = CACHE / f"cost-run-{uuid.uuid4().hex[:8]}"
    logs.mkdir(parents=True)
    log(f"cost: load {os.getloadavg()[0]:.2f} at start, logs in {logs}")
    figures = cost(args.rates, args.seconds, logs, with_peer=not args.no_peer)
    (logs / "cost.json").write_text(json.dumps(figures, indent=2) + "\n")
    print_cost(figures)
    return 0


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        raise SystemExit(main())
