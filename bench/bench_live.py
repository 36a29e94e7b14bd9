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
- tick-to-alert latency with ticks paced at several rates, at a Redis subscriber and in
  the alerter's histogram, record highs and divergences apart;
- the alerter (bench/bench_alerter.py) and the backtest (bench/bench_backtest.py).

It writes bench/results.json and docs/bench.png and prints the figures and the ratios.
A benchmark: it asserts nothing about speed; it fails only if a contender fails. The
machine is shared: compare the ratios of one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backtest import INDICES, RULES, generate

from schemas.pair_feed import PAIR_FEED_TOPIC
from services.runtime.lag import compute_lag
from services.runtime.settings import LOCAL_REDIS_PASSWORD_FILE, Settings

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".local" / "bench"
QUIX_VENV = CACHE / "venv-quix"
QUIX_PIN = "quixstreams==3.28.1"
PY = sys.executable
RESULTS = ROOT / "bench" / "results.json"
CHART = ROOT / "docs" / "bench.png"
BOOTSTRAP = os.environ.get("MARKETSIGNAL_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
# With the local stack's password, read as the services read it (its file under .local/).
REDIS_URL = Settings(
    redis_url=os.environ.get("MARKETSIGNAL_REDIS_URL", "redis://127.0.0.1:6379/0"),
    redis_password_file=ROOT / LOCAL_REDIS_PASSWORD_FILE,
).redis_url


def processor_group(namespace: str) -> str:
    """The processor's consumer group (and faust app id) in `namespace`."""
    return Settings(namespace=namespace).processor_consumer_group


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(namespace: str, rules: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MARKETSIGNAL_NAMESPACE=namespace,
        MARKETSIGNAL_KAFKA_BOOTSTRAP=BOOTSTRAP,
        MARKETSIGNAL_REDIS_URL=REDIS_URL,
        MARKETSIGNAL_CONFIG=str(rules),
        MARKETSIGNAL_STATE_DIR=str(CACHE / "state"),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def metric(text: str, name: str, labels: str = "") -> float | None:
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", re.M)
    found = pattern.search(text)
    return float(found.group(1)) if found else None


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def wait(what: str, check: Callable[[], bool], timeout_s: float, proc: Any = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited ({proc.returncode})")
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout_s}s waiting for {what}")


@contextmanager
def service(
    args: list[str], env: dict[str, str], logfile: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with logfile.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def read_topic(topic: str, limit_s: float = 120.0) -> list[Any]:
    """Every record of `topic`, from the start to the end offsets seen now."""
    consumer = KafkaConsumer(
        bootstrap_servers=BOOTSTRAP,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    try:
        consumer.topics()  # fetches metadata: partitions_for_topic only reads the cache
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=500, max_records=50_000).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


def group_lag(group: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    try:
        consumer.topics()
        return sum(p.lag for p in compute_lag(admin, consumer, group, [topic]))
    finally:
        admin.close()
        consumer.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def signal_key(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)


# -- the contenders ----------------------------------------------------------------------


def ingest(
    namespace: str, rules: Path, data: Path, logs: Path, *, bundles: bool = True
) -> dict[str, Any]:
    """`marketsignal ingest` of `data`, with its default tick bundles or one per record."""
    env = env_for(namespace, rules)
    started = time.perf_counter()
    command = [PY, "-m", "services.cli", "ingest", str(data), "--metrics-port", "-1"]
    proc = subprocess.run(
        command if bundles else [*command, "--no-bundle"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    (logs / f"ingest-{namespace}log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"ingest failed: {proc.stderr[-2000:]}")
    line = [x for x in proc.stderr.splitlines() + proc.stdout.splitlines() if "ingest:" in x][-1]
    found = re.search(r"\(([0-9,]+) ticks/s\)", line)
    rate = float(found.group(1).replace(",", "")) if found else 0.0
    return {"rate": rate, "wall_s": wall, "summary": line.strip()}


def raw_producer(topic: str, records: list[Any]) -> dict[str, Any]:
    """kafka-python's own producer, acks=all and idempotent, its other settings default."""
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True)
    try:
        producer.send(topic, key=b"warm-up", value=b"{}").get(timeout=30)
        started = time.perf_counter()
        for rec in records:
            # A bundle has no key and names its partition: so does this producer.
            partition = rec.partition if rec.key is None else None
            producer.send(topic, key=rec.key, value=rec.value, partition=partition)
        producer.flush()
        seconds = time.perf_counter() - started
    finally:
        producer.close()
    ticks = sum(ticks_in(rec.value) for rec in records)
    return {"rate": ticks / seconds, "records_per_s": len(records) / seconds, "seconds": seconds}


def ticks_in(value: bytes) -> int:
    """Ticks in a `ticks` record: one, or the length of a bundle."""
    return len(json.loads(value)) if value[:1] == b"[" else 1


def contender(
    args: list[str], out: Path, timeout_s: float, logfile: Path, env: dict[str, str]
) -> dict[str, Any]:
    out.unlink(missing_ok=True)
    with logfile.open("wb") as fh:
        proc = subprocess.run(
            args,
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
        )
    if not out.exists():
        raise RuntimeError(f"{args[1:3]} wrote no result (exit {proc.returncode}); see {logfile}")
    return dict(json.loads(out.read_text()))


def processor_drain(
    namespace: str, rules: Path, count: int, logs: Path, extra_workers: int = 0
) -> dict[str, Any]:
    """`marketsignal process` on the filled topic: ticks evaluated per second, from its
    own counter (sampled every 50 ms), and the wall time until the group's lag is 0."""
    ports = [free_port() for _ in range(1 + extra_workers)]
    env = env_for(namespace, rules)
    procs = []
    files = []
    started = time.perf_counter()
    for i, port in enumerate(ports):
        fh = (logs / f"process-{namespace}{len(ports)}w-{i}.log").open("wb")
        files.append(fh)
        procs.append(
            subprocess.Popen(
                [
                    PY,
                    "-m",
                    "services.cli",
                    "process",
                    "--metrics-port",
                    str(port),
                    "--web-port",
                    "0",
                    "--loglevel",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        first = last = 0.0
        evaluated = at_first = 0.0
        deadline = time.monotonic() + max(300.0, count / 500)
        while time.monotonic() < deadline:
            total = 0.0
            for port in ports:
                with suppress(OSError):
                    value = metric(
                        scrape(port),
                        "marketsignal_processor_ticks_evaluated_total",
                        '{stage="symbol"}',
                    )
                    total += value or 0.0
            now = time.perf_counter()
            if total > 0 and not first:
                first, at_first = now, total
            if total >= count:
                last, evaluated = now, total
                break
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"process exited ({p.returncode}); see {logs}")
            time.sleep(0.05)
        else:
            raise RuntimeError(f"processor drain timed out at {total:.0f}/{count}")
        group = processor_group(namespace)
        wait(
            "the processor's lag to reach 0",
            # by_pair also carries the leader's heartbeats, a few a second, committed
            # every few seconds: its lag at rest is a handful of heartbeats, never 0.
            lambda: (
                group_lag(group, namespace + "ticks") == 0
                and group_lag(group, namespace + PAIR_FEED_TOPIC) < 100
            ),
            120,
        )
        drained = time.perf_counter() - started
        rss = [rss_mb(p.pid) for p in procs]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for fh in files:
            fh.close()
    # The first sample sees the first batch done: count it out of the window too.
    return {
        "rate": (evaluated - at_first) / (last - first) if last > first else 0.0,
        "seconds": last - first,
        "lag_drain_wall_s": drained,
        "rss_mb": rss,
        "workers": len(ports),
    }


def backtest(data: Path, rules: Path, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    with out.open("wb") as fh:
        proc = subprocess.run(
            [PY, "-m", "services.cli", "backtest", str(data), "--config", str(rules)],
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.PIPE,
            check=False,
        )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode()[-2000:])
    summary = proc.stderr.decode().strip().splitlines()[-1]
    found = re.search(r"\(([0-9,]+) ticks/s\)", summary)
    return {
        "rate": float(found.group(1).replace(",", "")) if found else 0.0,
        "wall_s": wall,
        "summary": summary,
    }


def quix_available() -> bool:
    py = QUIX_VENV / "bin" / "python"
    if py.exists():
        return True
    log(f"creating {QUIX_VENV} for the Quix Streams peer ({QUIX_PIN})")
    subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", QUIX_PIN, "orjson==3.13.0", "tzdata==2026.6"],
        check=False,
    )
    return proc.returncode == 0


# -- latency ------------------------------------------------------------------------------


class Subscriber(threading.Thread):
    """A Redis client on the alert channels, as a user's app would be: receive times."""

    def __init__(self, namespace: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(REDIS_URL)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(f"{namespace}alerts:*")
        self.received: list[tuple[float, bytes]] = []
        self.stopping = False

    def run(self) -> None:
        while not self.stopping:
            msg = self.pubsub.get_message(timeout=0.2)
            if msg is not None:
                self.received.append((time.time(), msg["data"]))

    def stop(self) -> None:
        self.stopping = True
        self.join(timeout=5)
        self.pubsub.close()
        self.client.close()


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "n": len(ordered),
        "p50_ms": at(0.5),
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
        "max_ms": ordered[-1] * 1000,
    }


def histogram(text: str, name: str) -> list[tuple[float, float]]:
    out = []
    for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} ([0-9.e+]+)$', text, re.M):
        out.append((float(m.group(1)), float(m.group(2))))
    return out


def histogram_quantiles(
    before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> dict[str, float | int]:
    """Quantiles of the observations between two scrapes, as Prometheus' histogram_quantile
    estimates them (linear within a bucket)."""
    prior = dict(before)
    buckets = [(le, n - prior.get(le, 0.0)) for le, n in after]
    total = buckets[-1][1] if buckets else 0
    if not total:
        return {"n": 0}
    out: dict[str, float | int] = {"n": int(total)}
    for q in (0.5, 0.9, 0.99):
        rank = q * total
        lower, below = 0.0, 0.0
        for le, n in buckets:
            if n >= rank:
                if le == float("inf"):
                    out[f"p{round(q * 100)}_ms"] = lower * 1000
                else:
                    frac = (rank - below) / (n - below) if n > below else 1.0
                    out[f"p{round(q * 100)}_ms"] = (lower + (le - lower) * frac) * 1000
                break
            lower, below = le, n
    return out


def latency(
    rules: Path, data: Path, rates: list[int], seconds: float, logs: Path, single: list[int]
) -> dict[str, Any]:
    """Tick-to-alert latency, ticks paced at each of `rates` with the ingestor's default
    tick bundles (the bundle window included), then at each of `single` one per record."""
    namespace = f"bench.lat.{uuid.uuid4().hex[:8]}."
    env = env_for(namespace, rules)
    p_port, a_port = free_port(), free_port()
    lines = data.read_text().splitlines()
    header, body = lines[0], lines[1:]
    levels: list[dict[str, Any]] = []
    sub = Subscriber(namespace)
    sub.start()
    with (
        service(
            [
                PY,
                "-m",
                "services.cli",
                "process",
                "--metrics-port",
                str(p_port),
                "--web-port",
                "0",
                "--loglevel",
                "warning",
            ],
            env,
            logs / "latency-process.log",
        ) as proc,
        service(
            [PY, "-m", "services.cli", "alert", "--metrics-port", str(a_port)],
            env | {"MARKETSIGNAL_API_PORT": str(free_port())},
            logs / "latency-alert.log",
        ) as alerter,
    ):
        # The alerter is ready once it has polled signals, which exist once the processor
        # ran: create the topics by starting the processor first.
        wait("the processor's /readyz", lambda: ready(p_port), 180, proc)
        at = 0
        for rate, bundles in [(r, True) for r in rates] + [(r, False) for r in single]:
            n = int(rate * seconds)
            part = logs / f"latency-{rate}.csv"
            part.write_text("\n".join([header, *body[at : at + n]]) + "\n")
            first_ts = int(body[at].split(",")[1])
            last_ts = int(body[at + n - 1].split(",")[1])
            at += n
            before = scrape(a_port) if ready(a_port) else ""
            log(f"latency: {n:,} ticks at {rate:,}/s, {'bundles' if bundles else 'one per record'}")
            started = time.time()
            command = [
                PY,
                "-m",
                "services.cli",
                "ingest",
                str(part),
                "--rate",
                str(rate),
                "--metrics-port",
                "-1",
            ]
            run = subprocess.run(
                command if bundles else [*command, "--no-bundle"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode != 0:
                raise RuntimeError(f"paced ingest failed: {run.stderr[-2000:]}")
            sent_s = time.time() - started
            wait(
                "the processor to catch up",
                lambda: group_lag(processor_group(namespace), namespace + "ticks") == 0,
                300,
                proc,
            )
            # Alerts of this level: give the alerter a moment after the processor's commit.
            quiet = len(sub.received)
            time.sleep(1.5)
            while len(sub.received) != quiet:
                quiet = len(sub.received)
                time.sleep(1.0)
            after = scrape(a_port)
            levels.append(
                {
                    "rate": rate,
                    "bundles": bundles,
                    "ticks": n,
                    "achieved_rate": n / sent_s,
                    "ts_range": [first_ts, last_ts],
                    "histogram": histogram_quantiles(
                        histogram(before, "marketsignal_tick_to_alert_latency_seconds"),
                        histogram(after, "marketsignal_tick_to_alert_latency_seconds"),
                    ),
                }
            )
        if alerter.poll() is not None:
            raise RuntimeError("the alerter exited; see latency-alert.log")
    sub.stop()
    # When each tick entered the pipeline, found by the tick's ts (the generator's
    # timestamps are strictly increasing, hence unique): a bundle's x-ingested-at header
    # (its first tick's arrival, so the bundle window counts in full for every tick in
    # it), else the ingestor's record timestamp.
    origin: dict[int, float] = {}
    for rec in read_topic(namespace + "ticks"):
        sent = rec.timestamp / 1000
        for name, value in rec.headers or ():
            if name == "x-ingested-at":
                sent = int(value) / 1000
        value = json.loads(rec.value)
        for tick in value if isinstance(value, list) else [value]:
            origin[round(datetime.fromisoformat(tick["ts"]).timestamp() * 1000)] = sent
    per_level: dict[int, dict[str, list[float]]] = {
        i: {"record_high": [], "index_divergence": []} for i in range(len(levels))
    }
    unmatched = 0
    for received, payload in sub.received:
        alert = json.loads(payload)
        ts_ms = round(datetime.fromisoformat(alert["signal"]["ts"]).timestamp() * 1000)
        sent = origin.get(ts_ms)
        if sent is None:
            unmatched += 1  # a divergence released by a heartbeat has no single tick
            continue
        for i, lv in enumerate(levels):
            if lv["ts_range"][0] <= ts_ms <= lv["ts_range"][1]:
                per_level[i][alert["kind"]].append(received - sent)
    for i, lv in enumerate(levels):
        lv["subscriber"] = {k: percentiles(v) for k, v in per_level[i].items()}
        del lv["ts_range"]
    passes = None
    for lo, hi in itertools.pairwise(lv for lv in levels if lv["bundles"]):
        p_lo = lo["subscriber"]["record_high"].get("p99_ms", 0)
        p_hi = hi["subscriber"]["record_high"].get("p99_ms", 0)
        if p_lo <= 100 < p_hi:
            passes = lo["rate"] + (hi["rate"] - lo["rate"]) * (100 - p_lo) / (p_hi - p_lo)
            break
    if passes is None and levels and levels[0]["subscriber"]["record_high"].get("p99_ms", 0) > 100:
        passes = 0.0
    cleanup(namespace)
    return {"levels": levels, "p99_passes_100ms_at_rate": passes, "unmatched_alerts": unmatched}


# -- memory and recovery -------------------------------------------------------------------


def symbol_universe(n: int) -> list[str]:
    """Realistic breadth: HK listings, then Shanghai and Shenzhen A-shares."""
    hk = [f"{i:04d}.HK" for i in range(1, 2601)]
    sh = [f"{600000 + i}.SH" for i in range(2500)]
    sz = [f"{i:06d}.SZ" for i in range(1, 2501)]
    more = [f"{i:06d}.BJ" for i in range(max(0, n - 7600))]
    return (hk + sh + sz + more)[:n]


def memory_and_recovery(rules: Path, n_symbols: int, days: int, logs: Path) -> dict[str, Any]:
    """RSS of a worker holding `n_symbols` symbols' state, each with `days` days of daily
    highs (the 52-week window full), and the time to recover it after a restart.

    The state is written to the symbol table's changelog as the processor writes it (the
    trackers are fed one tick a day by the detectors themselves), then a worker starts on
    it: time to /readyz is the recovery, RSS is read when ready and again after one tick
    of every symbol has brought every tracker into its cache.
    """
    import random  # noqa: PLC0415 - only this step draws prices

    import orjson  # noqa: PLC0415
    from kafka.admin import NewTopic  # noqa: PLC0415

    from services.detection.engine import Clocks, record_high_config  # noqa: PLC0415
    from services.detection.record_high import SymbolTracker  # noqa: PLC0415
    from services.detection.rules import Rules  # noqa: PLC0415

    namespace = f"bench.mem.{uuid.uuid4().hex[:8]}."
    loaded = Rules.load(rules)
    config, clocks = record_high_config(loaded), Clocks(loaded.exchange_zones())
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
        tracker = SymbolTracker(symbol, config, clocks.for_symbol(symbol))
        price = rng.uniform(5, 500)
        for d in range(days):
            price *= 1 + rng.gauss(0.0003, 0.02)
            tracker.update(start_us + d * day_us + 7_200_000_000, price)
        value = orjson.dumps({"p": -1, "o": -1, "tracker": tracker.to_state()})
        total_bytes += len(value)
        producer.send(changelog, key=symbol.encode(), value=value)
    producer.flush()
    producer.close()
    built_s = time.perf_counter() - started
    log(f"memory: {n_symbols:,} states written ({total_bytes / n_symbols:,.0f} bytes each)")
    port = free_port()
    env = env_for(namespace, rules)
    args = [PY, "-m", "services.cli", "process", "--metrics-port", str(port), "--web-port", "0"]
    out: dict[str, Any] = {
        "symbols": n_symbols,
        "days_per_symbol": days,
        "state_bytes_per_symbol": total_bytes / n_symbols,
        "changelog_write_s": built_s,
    }
    with service([*args, "--loglevel", "warning"], env, logs / "memory-process.log") as proc:
        started = time.perf_counter()
        wait("the worker to recover its tables", lambda: ready(port), 900, proc)
        out["recovery_to_ready_s"] = time.perf_counter() - started
        out["rss_ready_mb"] = rss_mb(proc.pid)
        ticks = logs / "memory-ticks.csv"
        ts_ms = start_us // 1000 + days * 86_400_000 + 3_600_000
        lines = [
            f"{s},{ts_ms + i},{rng.uniform(5, 500):.4f},1,trade" for i, s in enumerate(symbols)
        ]
        ticks.write_text("symbol,ts,price,volume,kind\n" + "\n".join(lines) + "\n")
        ingest(namespace, rules, ticks, logs)

        def all_touched() -> bool:
            text = scrape(port)
            name = "marketsignal_processor_ticks_evaluated_total"
            return (metric(text, name, '{stage="symbol"}') or 0) >= n_symbols

        wait("one tick of every symbol", all_touched, 600, proc)
        out["rss_after_every_symbol_ticked_mb"] = rss_mb(proc.pid)
    # Restart: the same state, recovered by a fresh worker (its local state is memory).
    with service([*args, "--loglevel", "warning"], env, logs / "memory-restart.log") as proc:
        started = time.perf_counter()
        wait("the restarted worker to recover", lambda: ready(port), 900, proc)
        out["restart_recovery_to_ready_s"] = time.perf_counter() - started
        out["restart_rss_ready_mb"] = rss_mb(proc.pid)
    empty = f"bench.mem0.{uuid.uuid4().hex[:8]}."
    with service(
        [*args, "--loglevel", "warning"], env_for(empty, rules), logs / "memory-empty.log"
    ) as proc:
        started = time.perf_counter()
        wait("an empty worker to be ready", lambda: ready(port), 300, proc)
        out["empty_start_to_ready_s"] = time.perf_counter() - started
        out["empty_rss_ready_mb"] = rss_mb(proc.pid)
    cleanup(namespace)
    cleanup(empty)
    return out


# -- the run -----------------------------------------------------------------------------


def cleanup(namespace: str) -> None:
    with suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        names = [t for t in admin.list_topics() if t.startswith(namespace)]
        if names:
            admin.delete_topics(names)
        admin.close()
    with suppress(Exception):
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{namespace}*", count=5000))
        for i in range(0, len(keys), 5000):
            client.delete(*keys[i : i + 5000])
        client.close()


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
    out["kafka-broker"] = os.environ.get("KAFKA_VERSION", "3.9.1")
    with suppress(Exception):
        out["redis-server"] = redis.Redis.from_url(REDIS_URL).info()["redis_version"]
    return out


def alerter_figures(quick: bool) -> list[dict[str, Any]]:
    args = [PY, str(ROOT / "bench" / "bench_alerter.py")]
    args += (
        ["--alerts", "5000", "--subs", "1", "100", "10000"]
        if quick
        else ["--subs", "1", "100", "10000"]
    )
    proc = subprocess.run(
        args,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = []
    for line in proc.stdout.splitlines():
        m = re.match(
            r"\s*([0-9,]+) subscriptions: +([0-9,]+) alerts/s delivered "
            r"\(([0-9,]+) subscription deliveries, ([0-9,]+)/s",
            line,
        )
        if m:
            n = [int(g.replace(",", "")) for g in m.groups()]
            out.append(
                {
                    "subscriptions": n[0],
                    "alerts_per_s": n[1],
                    "deliveries": n[2],
                    "deliveries_per_s": n[3],
                }
            )
    return out


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Issue 15's targets, read from this run's figures."""
    tp = results["throughput"]
    out: dict[str, dict[str, Any]] = {}

    def add(name: str, figure: float, target: float, higher: bool = True) -> None:
        met = figure >= target if higher else figure <= target
        out[name] = {"figure": figure, "target": target, "met": met}

    add("processor_bundles_ticks_per_s", tp["processor_bundles"]["rate"], 100_000)
    if "quix_peer" in tp:
        add("processor_bundles_to_peer", results["ratios"]["processor_bundles_to_peer"], 1.2)
    add("ingest_bundles_ticks_per_s", tp["ingest_bundles"]["rate"], 100_000)
    for lv in results.get("latency", {}).get("levels", []):
        if lv["rate"] == 5000 and lv["bundles"]:
            p99 = lv["subscriber"]["record_high"].get("p99_ms")
            if p99 is not None:
                add("p99_ms_at_5k_with_bundles", p99, 50, higher=False)
    return out


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


def backfill(rules: Path, n: int, n_symbols: int, logs: Path) -> dict[str, Any]:
    """Replaying a day through the live path: the default (bundling) ingest at full speed
    while one worker processes; the time until the worker's lag on `ticks` is 0."""
    data = CACHE / f"backfill-{n}-{n_symbols}.csv"
    if not data.exists():
        broad_market(data, n, n_symbols)
    namespace = f"bench.backfill.{uuid.uuid4().hex[:8]}."
    env = env_for(namespace, rules)
    port = free_port()
    try:
        with service(
            [
                PY,
                "-m",
                "services.cli",
                "process",
                "--metrics-port",
                str(port),
                "--web-port",
                "0",
                "--loglevel",
                "warning",
            ],
            env,
            logs / "backfill-process.log",
        ) as proc:
            wait("the processor's /readyz", lambda: ready(port), 180, proc)
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
            evaluated = metric(
                scrape(port), "marketsignal_processor_ticks_evaluated_total", '{stage="symbol"}'
            )
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument(
        "--ticks", type=int, default=None, help="ticks on the topic (default 200,000; quick 40,000)"
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["quix", "latency", "alerter", "scale", "ingest", "memory", "backfill"],
    )
    parser.add_argument(
        "--backfill-ticks", type=int, default=None, help="default 3,000,000; quick 300,000"
    )
    parser.add_argument("--rates", type=int, nargs="*", default=None)
    args = parser.parse_args()
    n = args.ticks or (40_000 if args.quick else 200_000)
    rates = args.rates or ([1000, 5000] if args.quick else [1000, 2000, 5000, 10_000, 20_000])
    level_s = 4.0 if args.quick else 10.0

    CACHE.mkdir(parents=True, exist_ok=True)
    rules = CACHE / "bench-rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    data = CACHE / f"ticks-{n}.csv"
    if not data.exists():
        generate(data, n)
    lat_n = int((sum(rates) + 5000) * level_s)  # + the 5k/s level without bundles
    lat_data = CACHE / f"ticks-{lat_n}.csv"
    if "latency" not in args.skip and not lat_data.exists():
        generate(lat_data, lat_n)
    run_id = uuid.uuid4().hex[:8]
    logs = CACHE / f"run-{run_id}"
    logs.mkdir(parents=True)
    namespace = f"bench.{run_id}."
    bundles_ns = f"bench.{run_id}.bundles."
    ticks_topic = namespace + "ticks"
    py_env = env_for(namespace, rules)
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
    tp = results["throughput"]
    log(f"run {run_id}: {n:,} ticks, logs in {logs}")
    try:
        log("ingest: marketsignal ingest --no-bundle fills the topic (one tick per record)")
        tp["ingest"] = ingest(namespace, rules, data, logs, bundles=False)
        records = read_topic(ticks_topic)
        if len(records) != n:
            raise RuntimeError(f"the topic holds {len(records)} records, not {n}")
        if "ingest" not in args.skip:
            log("ingest: kafka-python's producer on the same bytes")
            tp["kafka_python_producer"] = raw_producer(namespace + "raw", records)
        del records
        for decoder in ("json", "orjson"):
            log(f"aiokafka limit ({decoder})")
            tp[f"aiokafka_{decoder}"] = contender(
                [
                    PY,
                    "bench/contenders.py",
                    "aiokafka",
                    "--topic",
                    ticks_topic,
                    "--count",
                    str(n),
                    "--decoder",
                    decoder,
                    "--out",
                    str(logs / f"aiokafka-{decoder}.json"),
                ],
                logs / f"aiokafka-{decoder}.json",
                600,
                logs / f"aiokafka-{decoder}.log",
                py_env,
            )
        log("bare faust agent (the ceiling)")
        tp["faust_bare"] = contender(
            [
                PY,
                "bench/contenders.py",
                "faust",
                "--topic",
                ticks_topic,
                "--count",
                str(n),
                "--out",
                str(logs / "faust.json"),
            ],
            logs / "faust.json",
            900,
            logs / "faust.log",
            py_env,
        )
        log("marketsignal process: backlog drain, 1 worker")
        tp["processor"] = processor_drain(namespace, rules, n, logs)
        processed = read_topic(namespace + "signals")
        log("backtest")
        bt_out = logs / "backtest.jsonl"
        tp["backtest"] = backtest(data, rules, bt_out)
        expected = [json.loads(x) for x in bt_out.read_text().splitlines()]
        highs = sorted(signal_key(s) for s in expected if s["kind"] == "record_high")
        got = [json.loads(r.value) for r in processed]
        results["checks"] = {
            "backtest_record_highs": len(highs),
            "backtest_divergences": len(expected) - len(highs),
            "processor_record_highs_equal_backtest": sorted(
                signal_key(s) for s in got if s["kind"] == "record_high"
            )
            == highs,
            "processor_divergences": sum(1 for s in got if s["kind"] == "index_divergence"),
        }
        if "quix" not in args.skip and quix_available():
            log("Quix Streams peer")
            tp["quix_peer"] = contender(
                [
                    str(QUIX_VENV / "bin" / "python"),
                    "bench/quix_peer.py",
                    "--bootstrap",
                    BOOTSTRAP,
                    "--topic",
                    ticks_topic,
                    "--signals",
                    namespace + "quix.signals",
                    "--count",
                    str(n),
                    "--config",
                    str(rules),
                    "--out",
                    str(logs / "quix.json"),
                ],
                logs / "quix.json",
                900,
                logs / "quix.log",
                py_env,
            )
            peer = sorted(
                signal_key(json.loads(r.value)) for r in read_topic(namespace + "quix.signals")
            )
            results["checks"]["quix_record_highs_equal_backtest"] = peer == highs
        log("ingest with tick bundles (the default) fills a topic of its own")
        tp["ingest_bundles"] = ingest(bundles_ns, rules, data, logs)
        bundled = read_topic(bundles_ns + "ticks")
        in_bundles = sum(ticks_in(r.value) for r in bundled)
        if in_bundles != n:
            raise RuntimeError(f"the bundles hold {in_bundles} ticks, not {n}")
        results["bundles"] = {"records": len(bundled), "ticks_per_record": n / len(bundled)}
        if "ingest" not in args.skip:
            log("ingest: kafka-python's producer on the same bundles")
            tp["kafka_python_producer_bundles"] = raw_producer(bundles_ns + "raw", bundled)
        del bundled
        log("marketsignal process: backlog drain of the bundles, 1 worker")
        tp["processor_bundles"] = processor_drain(bundles_ns, rules, n, logs)
        got = [json.loads(r.value) for r in read_topic(bundles_ns + "signals")]
        results["checks"]["processor_bundles_record_highs_equal_backtest"] = (
            sorted(signal_key(s) for s in got if s["kind"] == "record_high") == highs
        )
        results["checks"]["processor_bundles_divergences"] = sum(
            1 for s in got if s["kind"] == "index_divergence"
        )
        cleanup(bundles_ns)
        if "scale" not in args.skip:
            log("marketsignal process: backlog drain, 2 workers on 6 partitions")
            scale_ns = f"bench.{run_id}.scale."
            ingest(scale_ns, rules, data, logs)
            try:
                tp["processor_2_workers"] = processor_drain(
                    scale_ns, rules, n, logs, extra_workers=1
                )
            except RuntimeError as exc:  # reported, not fatal: the other figures stand
                results["scale_error"] = str(exc)
            cleanup(scale_ns)
    finally:
        cleanup(namespace)
        cleanup(bundles_ns)
    if "latency" not in args.skip:
        results["latency"] = latency(rules, lat_data, rates, level_s, logs, single=[5000])
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
    proc_rate = tp["processor"]["rate"]
    ratios = {
        "processor_to_ceiling": proc_rate / tp["faust_bare"]["rate"],
        "processor_to_limit_json": proc_rate / tp["aiokafka_json"]["rate"],
        "processor_to_limit_orjson": proc_rate / tp["aiokafka_orjson"]["rate"],
    }
    if "quix_peer" in tp:
        ratios["processor_to_peer"] = proc_rate / tp["quix_peer"]["rate"]
    if "kafka_python_producer" in tp:
        ratios["ingest_to_kafka_python_producer"] = (
            tp["ingest"]["rate"] / tp["kafka_python_producer"]["rate"]
        )
    if "processor_2_workers" in tp:
        ratios["two_workers_to_one"] = tp["processor_2_workers"]["rate"] / proc_rate
    bundled_rate = tp["processor_bundles"]["rate"]
    ratios["processor_bundles_to_processor"] = bundled_rate / proc_rate
    ratios["processor_bundles_ticks_to_ceiling_events"] = bundled_rate / tp["faust_bare"]["rate"]
    if "quix_peer" in tp:
        ratios["processor_bundles_to_peer"] = bundled_rate / tp["quix_peer"]["rate"]
    ratios["ingest_bundles_to_ingest"] = tp["ingest_bundles"]["rate"] / tp["ingest"]["rate"]
    if "kafka_python_producer_bundles" in tp:
        ratios["ingest_bundles_to_kafka_python_producer_bundles"] = (
            tp["ingest_bundles"]["rate"] / tp["kafka_python_producer_bundles"]["rate"]
        )
    results["ratios"] = ratios
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
        from bench_chart import draw  # noqa: PLC0415 - matplotlib is optional ('.[bench]')

        draw(results, chart)
        log(f"wrote {target.relative_to(ROOT)} and {chart.relative_to(ROOT)}")
    except ImportError:
        log(f"wrote {RESULTS.relative_to(ROOT)}; no chart without matplotlib ('.[bench]')")
    shutil.rmtree(CACHE / "state" / (processor_group(namespace)), ignore_errors=True)
    return 0


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
        print(
            f"  latency at {lv['rate']:>6,}/s {'bundles' if lv['bundles'] else 'single '} "
            f"(achieved {lv['achieved_rate']:,.0f}/s): "
            "record highs "
            f"n={rh.get('n')} p50 {rh.get('p50_ms', 0):.1f} p99 {rh.get('p99_ms', 0):.1f} ms | "
            f"divergences n={dv.get('n')} p50 {dv.get('p50_ms', 0):.1f} "
            f"p99 {dv.get('p99_ms', 0):.1f} ms | alerter histogram n={hist.get('n')} "
            f"p50 {hist.get('p50_ms', 0):.1f} p99 {hist.get('p99_ms', 0):.1f} ms"
        )
    if "latency" in results:
        print(
            f"  p99 passes 100 ms at about {results['latency']['p99_passes_100ms_at_rate']} ticks/s"
        )
    for name, value in results.get("memory", {}).items():
        print(f"  memory {name}: {value:,.1f}")
    for row in results.get("alerter", []):
        print(
            f"  alerter {row['subscriptions']:>6} subs: {row['alerts_per_s']:,} alerts/s, "
            f"{row['deliveries_per_s']:,} deliveries/s"
        )


if __name__ == "__main__":
    raise SystemExit(main())
