"""`make run`: replay the demo data set through the real pipeline, alerts shown live.

Starts a processor and an alerter (on the local stack `make stack-up` started),
subscribes to `alerts:*` like any subscriber, creates a subscription with a price level
of its own (`marketsignal subscribe --above 2513.HK=400`: deploy/demo/levels.jsonl's
level) and follows its stream, where that level's firings arrive and nowhere else,
seeds the processor with the daily history
deploy/demo/bars.csv (`marketsignal history load`, waiting until it is merged), replays
deploy/demo/ticks.csv with the ingestor, prints every alert as it arrives, then a
summary, and stops what it started.

Each run uses a fresh namespace (topics, consumer groups, Redis keys) unless
MARKETSIGNAL_NAMESPACE is set: alerts are de-duplicated by id, so a second run in the
same namespace would rightly deliver nothing new.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaConsumer, TopicPartition

from schemas.alert import Alert
from services.alerter.format import format_alert
from services.backtest.levels import read_levels
from services.backtest.run import run_backtest
from services.detection.rules import Rules
from services.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "deploy" / "demo" / "ticks.csv"
BARS = ROOT / "deploy" / "demo" / "bars.csv"
RULES = ROOT / "deploy" / "demo" / "rules.toml"
# The demo's own level, 2513.HK above 400: the subscription below is given it.
LEVELS = ROOT / "deploy" / "demo" / "levels.jsonl"
LEVEL_ARGS = ["--above", "2513.HK=400"]
TIMEOUT_S = float(os.environ.get("DEMO_TIMEOUT_S", "300"))
# Paced so alerts arrive at a readable speed and the processor is never backlogged.
RATE = os.environ.get("DEMO_RATE", "4000")


def topic_size(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return int(sum(ends.values()))
    finally:
        consumer.close()


def free_port() -> int:
    # Faust refuses port 0; ask the OS for a free one so a running `make up` is no bother.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    namespace = os.environ.get("MARKETSIGNAL_NAMESPACE") or datetime.now(UTC).strftime(
        "run%Y%m%d%H%M%S."
    )
    rules_path = Path(os.environ.get("MARKETSIGNAL_CONFIG") or RULES)
    settings = Settings(namespace=namespace, config=rules_path)
    env = dict(os.environ, MARKETSIGNAL_NAMESPACE=namespace, MARKETSIGNAL_CONFIG=str(rules_path))
    # Metrics on any free port, so a running `make up` (9101-9103) is no bother.
    for service in ("INGESTOR", "PROCESSOR", "ALERTER"):
        env[f"MARKETSIGNAL_{service}_METRICS_PORT"] = "0"
    logs = ROOT / ".local" / "logs" / namespace.rstrip(".")
    logs.mkdir(parents=True, exist_ok=True)

    expected = run_backtest(
        DEMO, Rules.load(rules_path), io.BytesIO(), io.StringIO(), progress=False, history=BARS
    )
    n_expected = sum(expected.signals.values())
    with_levels = run_backtest(
        DEMO,
        Rules.load(rules_path),
        io.BytesIO(),
        io.StringIO(),
        progress=False,
        history=BARS,
        levels=read_levels(LEVELS),
    )
    n_level = with_levels.signals.get("price_level", 0)
    print(
        f"marketsignal demo: namespace {namespace!r}, rules {rules_path.relative_to(ROOT)}, "
        f"logs in {logs.relative_to(ROOT)}/"
    )
    print(
        f"seeding {expected.bars:,} daily bars from {BARS.relative_to(ROOT)}, then replaying "
        f"{DEMO.relative_to(ROOT)} ({expected.lines:,} ticks; the backtest of both gives "
        f"{n_expected} signals) at {RATE} ticks/s; a subscription's own level, 2513.HK "
        f"above 400, fires {n_level} times (backtest --levels {LEVELS.relative_to(ROOT)})\n"
    )

    client = redis.Redis.from_url(settings.redis_url)
    live = client.pubsub(ignore_subscribe_messages=True)
    live.psubscribe(f"{namespace}alerts:*")
    processor = start("processor", ["process", "--web-port", str(free_port())], env, logs)
    alerter = start("alerter", ["alert"], env, logs)
    # A subscriber's own level, as a user sets one: through the CLI (the API does the same).
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "subscribe",
            "--name",
            "zhipu above 400",
            "--symbols",
            "2513.HK",
            *LEVEL_ARGS,
            "--no-tail",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if made.returncode != 0:
        print(f"subscribe failed: {made.stderr.strip()}")
        for proc in (alerter, processor):
            stop(proc)
        return 1
    print(made.stderr.strip())
    sub_stream = settings.redis_key(f"alerts:sub:{made.stdout.strip()}")
    sub_last = "0-0"
    fired: list[Alert] = []
    # Seeded first, and merged (--wait) before the first tick: a deterministic replay.
    history = start("history", ["history", "load", str(BARS), "--wait", "180"], env, logs)
    if history.wait(timeout=240) != 0:
        print(f"history load failed; see {logs.relative_to(ROOT)}/history.log")
        for proc in (alerter, processor):
            stop(proc)
        return 1
    feed = start("ingest", ["ingest", str(DEMO), "--rate", RATE], env, logs)
    seen: set[str] = set()
    by_kind: Counter[str] = Counter()
    started = time.monotonic()
    last_alert = started
    try:
        while time.monotonic() - started < TIMEOUT_S:
            msg = live.get_message(timeout=0.5)
            if msg and msg["type"] == "pmessage":
                alert = Alert.model_validate_json(msg["data"])
                if alert.alert_id not in seen:
                    seen.add(alert.alert_id)
                    by_kind[alert.kind] += 1
                    print(format_alert(alert), flush=True)
                last_alert = time.monotonic()
            # The level's firings: on the subscription's own stream only.
            read: Any = client.xread({sub_stream: sub_last}, count=100)
            for _, entries in read or []:
                for entry_id, fields in entries:
                    sub_last = entry_id
                    alert = Alert.model_validate_json(fields[b"alert"])
                    if alert.kind == "price_level":
                        fired.append(alert)
                        print("your level: " + format_alert(alert), flush=True)
                        last_alert = time.monotonic()
            for name, proc in (("processor", processor), ("alerter", alerter)):
                if proc.poll() is not None:
                    print(f"{name} exited early; see {logs.relative_to(ROOT)}/{name}.log")
                    return 1
            feed_done = feed.poll() is not None
            caught_up = len(seen) >= n_expected and len(fired) >= n_level
            if feed_done and caught_up and time.monotonic() - last_alert > 2:
                break
            if feed_done and time.monotonic() - last_alert > 30:
                break  # nothing more is coming
    except KeyboardInterrupt:
        print("\ninterrupted")
    finally:
        live.close()
        for proc in (feed, alerter, processor):
            stop(proc)
    ingest_line = (logs / "ingest.log").read_text(errors="replace").strip().splitlines()
    delivered = int(client.xlen(settings.redis_key("alerts")))
    print("\nsummary")
    print(f"  ticks in       {ingest_line[-1] if ingest_line else '(no ingest output)'}")
    print(
        f"  signals        {topic_size(settings, settings.signals_topic)} on "
        f"{settings.signals_topic}"
    )
    print(
        f"  alerts         {delivered} delivered to the stream, {len(seen)} seen live "
        f"(backtest: {n_expected})"
    )
    print("  by kind        " + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())))
    print(
        f"  your level     2513.HK above 400 fired {len(fired)} times on {sub_stream} "
        f"(backtest --levels: {n_level}), none on the shared stream or channels"
    )
    print(f"  dead letters   {topic_size(settings, settings.dlq_topic)} on {settings.dlq_topic}")
    ok = (
        delivered == n_expected == len(seen)
        and len(fired) == n_level
        and "price_level" not in by_kind
        and feed.returncode == 0
    )
    print("  result         " + ("OK: every signal delivered once" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
