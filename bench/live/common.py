"""What every step of the live bench shares: where things are, the services' command
lines and environments, metrics scrapes, waits, topics and clean-up."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from subprocess import Popen
from typing import Any

import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from services.runtime.lag import compute_lag
from services.runtime.settings import LOCAL_REDIS_PASSWORD_FILE, Settings
from tests.support.services import Service, free_port

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".local" / "bench"
PY = sys.executable
BOOTSTRAP = os.environ.get("MARKETSIGNAL_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
# With the local stack's password, read as the services read it (its file under .local/).
REDIS_URL = Settings(
    redis_url=os.environ.get("MARKETSIGNAL_REDIS_URL", "redis://127.0.0.1:6379/0"),
    redis_password_file=ROOT / LOCAL_REDIS_PASSWORD_FILE,
).redis_url
EVALUATED = "marketsignal_processor_ticks_evaluated_total"


def processor_group(namespace: str) -> str:
    """The processor's consumer group (and faust app id) in `namespace`."""
    return Settings(namespace=namespace).processor_consumer_group


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def alternated(names: tuple[str, ...], rounds: int) -> list[str]:
    """`names` `rounds` times, every other round reversed (ABC CBA ABC): a drift of the
    shared machine falls on every contender alike, and none always runs first."""
    return [name for r in range(rounds) for name in (names if r % 2 == 0 else names[::-1])]


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


def process_args(metrics_port: int) -> list[str]:
    """`marketsignal process` as every step runs it: metrics on `metrics_port`, faust's
    web server on a port of its own choosing, and quiet."""
    return [
        "process",
        "--metrics-port",
        str(metrics_port),
        "--web-port",
        "0",
        "--loglevel",
        "warning",
    ]


def scrape(port: int, *names: str) -> str:
    """A service's /metrics: whole, or only the samples of `names`."""
    query = "?" + "&".join(f"name[]={n}" for n in names) if names else ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics{query}", timeout=5) as resp:
        return str(resp.read().decode())


def metric(text: str, name: str, labels: str = "") -> float | None:
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", re.M)
    found = pattern.search(text)
    return float(found.group(1)) if found else None


def ticks_evaluated(port: int) -> float:
    """The processor's own count of ticks its symbol stage evaluated (0 before any). Polled
    every 50 ms during a drain: the whole exposition cost the worker ~3% of a drain with
    every signal on (more kinds, more series), one counter a fraction of that."""
    return metric(scrape(port, EVALUATED), EVALUATED, '{stage="symbol"}') or 0.0


def rate_in(summary: str) -> float:
    """The ticks/s a command's summary line reports ("... (12,345 ticks/s)")."""
    found = re.search(r"\(([0-9,]+) ticks/s\)", summary)
    return float(found.group(1).replace(",", "")) if found else 0.0


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


def ready_after(proc: Popen[bytes], port: int, what: str, timeout_s: float) -> float:
    """Seconds until the worker on `port` answers /readyz (its tables recovered)."""
    started = time.perf_counter()
    wait(what, lambda: ready(port), timeout_s, proc)
    return time.perf_counter() - started


@contextmanager
def service(args: list[str], env: dict[str, str], logfile: Path) -> Iterator[Popen[bytes]]:
    """`marketsignal ARGS` for the length of a step, its output in `logfile`; then
    SIGTERM, as an operator would stop it."""
    running = Service(logfile.stem, args, env, logfile.parent)
    try:
        yield running.proc
    finally:
        running.stop()


@contextmanager
def worker(env: dict[str, str], logfile: Path) -> Iterator[tuple[Popen[bytes], int]]:
    """`marketsignal process` as a service, its metrics on a free port: (process, port)."""
    port = free_port()
    with service(process_args(port), env, logfile) as proc:
        yield proc, port


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


def ticks_in(value: bytes) -> int:
    """Ticks in a `ticks` record: one, or the length of a bundle."""
    return len(json.loads(value)) if value[:1] == b"[" else 1


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


CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process, every thread included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK
