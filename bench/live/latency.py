"""Tick-to-alert latency: ticks paced at several rates through the live path, timed at a
Redis subscriber (record highs and divergences apart) and in the alerter's histogram."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from bench.live.common import (
    REDIS_URL,
    cleanup,
    env_for,
    group_lag,
    log,
    processor_group,
    read_topic,
    ready,
    ready_after,
    scrape,
    service,
    wait,
    worker,
)
from bench.live.ingest import ingest
from bench.live.latency_stats import histogram, histogram_quantiles, percentiles
from services.runtime.heap import freeze_heap
from tests.support.services import free_port

HISTOGRAM = "marketsignal_tick_to_alert_latency_seconds"


class Subscriber(threading.Thread):
    """A Redis client on the alert channels, as a user's app would be: receive times."""

    def __init__(self, namespace: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(REDIS_URL)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(f"{namespace}alerts:*")
        self.received: list[tuple[float, bytes]] = []
        self.stopping = False
        # A full collection in this process would stamp alerts late: it is the
        # measuring instrument, kept as lean as the services (services/runtime/heap.py).
        freeze_heap()

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


def ts_ms(iso: str) -> int:
    """A tick's or signal's ts (ISO 8601) in epoch ms: how the bench matches them."""
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def tick_origins(topic: str) -> dict[int, float]:
    """When each tick of `topic` entered the pipeline (epoch s), by the tick's ts in ms
    (the generator's timestamps are strictly increasing, hence unique): a bundle's
    x-ingested-at header (its first tick's arrival, so the bundle window counts in full
    for every tick in it), else the ingestor's record timestamp."""
    origin: dict[int, float] = {}
    for rec in read_topic(topic):
        sent = rec.timestamp / 1000
        for name, value in rec.headers or ():
            if name == "x-ingested-at":
                sent = int(value) / 1000
        value = json.loads(rec.value)
        for tick in value if isinstance(value, list) else [value]:
            origin[ts_ms(tick["ts"])] = sent
    return origin


def p99_passes_100ms(points: list[tuple[int, float]]) -> float | None:
    """The rate from which the p99 stays over 100 ms, interpolated between the last level
    under it and the first over it; None if the highest level is still under it, 0.0 if
    every level is over. A lone slow level below faster ones (a small sample's outlier)
    does not count as the crossing."""
    k = len(points)
    while k > 0 and points[k - 1][1] > 100:
        k -= 1
    if k == len(points):
        return None
    if k == 0:
        return 0.0
    (r_lo, p_lo), (r_hi, p_hi) = points[k - 1], points[k]
    return r_lo + (r_hi - r_lo) * (100 - p_lo) / (p_hi - p_lo)


def latency(
    rules: Path, data: Path, rates: list[int], seconds: float, logs: Path, single: list[int]
) -> dict[str, Any]:
    """Tick-to-alert latency, ticks paced at each of `rates` with the ingestor's default
    tick bundles (the bundle window included), then at each of `single` one per record."""
    namespace = f"bench.lat.{uuid.uuid4().hex[:8]}."
    env = env_for(namespace, rules)
    a_port = free_port()
    lines = data.read_text().splitlines()
    header, body = lines[0], lines[1:]
    levels: list[dict[str, Any]] = []
    sub = Subscriber(namespace)
    sub.start()
    with (
        worker(env, logs / "latency-process.log") as (proc, p_port),
        service(
            ["alert", "--metrics-port", str(a_port)],
            env | {"MARKETSIGNAL_API_PORT": str(free_port())},
            logs / "latency-alert.log",
        ) as alerter,
    ):
        # The alerter is ready once it has polled signals, which exist once the processor
        # ran: create the topics by starting the processor first.
        ready_after(proc, p_port, "the processor's /readyz", 180)
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
            paced = ingest(namespace, rules, part, logs, bundles=bundles, rate=rate)
            sent_s = paced["wall_s"]
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
                        histogram(before, HISTOGRAM), histogram(after, HISTOGRAM)
                    ),
                }
            )
        if alerter.poll() is not None:
            raise RuntimeError("the alerter exited; see latency-alert.log")
    sub.stop()
    origin = tick_origins(namespace + "ticks")
    per_level: dict[int, dict[str, list[float]]] = {
        i: {"record_high": [], "index_divergence": [], "all": []} for i in range(len(levels))
    }
    unmatched = 0
    for received, payload in sub.received:
        alert = json.loads(payload)
        at = ts_ms(alert["signal"]["ts"])
        sent = origin.get(at)
        if sent is None:
            unmatched += 1  # a divergence released by a heartbeat has no single tick
            continue
        for i, lv in enumerate(levels):
            if lv["ts_range"][0] <= at <= lv["ts_range"][1]:
                per_level[i].setdefault(alert["kind"], []).append(received - sent)
                per_level[i]["all"].append(received - sent)
    for i, lv in enumerate(levels):
        lv["subscriber"] = {k: percentiles(v) for k, v in per_level[i].items()}
        del lv["ts_range"]
    passes = p99_passes_100ms(
        [
            (lv["rate"], lv["subscriber"]["record_high"].get("p99_ms", 0.0))
            for lv in levels
            if lv["bundles"]
        ]
    )
    cleanup(namespace)
    return {"levels": levels, "p99_passes_100ms_at_rate": passes, "unmatched_alerts": unmatched}
