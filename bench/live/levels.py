"""Issue 22's figures: a subscriber's own price levels at scale and at speed.

- **Drain**: the same trading day over 10,000 symbols, in tick bundles, drained by one
  worker with no levels, with 100,000 levels over those 10,000 symbols (ten a symbol,
  2-10% from its first price, so that many fire: each firing is a signal like any
  other, encoded, produced and acknowledged), and with 100,000 levels the day never
  reaches (what holding and checking them costs). Three drains of each, interleaved
  so that a drift of the shared machine falls on all alike; medians. The rate, the
  worker's RSS after the drain, and its firings checked equal to `backtest --levels`
  on the same ticks. The levels are written to the compacted levels topic as the API writes them,
  100 subscriptions of 1,000 (the API's limits); 100,000 POSTs would take minutes and
  measure the API, not the stream.
- **Arming**: on an idle stack (processor and alerter, the alerter serving the API),
  levels created one at a time through the API: the time from its 201 to the
  processor's `marketsignal_processor_levels_armed` gauge counting the level, and from
  a DELETE's 204 to the gauge dropping it (after which the level cannot fire).
- **Latency**: one symbol trading 5,000 ticks/s (tick bundles, the ingestor's default),
  its price swinging through six levels of a subscription (frequency `every`) five
  times a second and setting a new high at each swing's top: each firing timed at the
  subscription's own stream (XREAD, as its owner reads it) and each record high at the
  shared channels, from the tick's ingest, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaProducer

from bench.live.common import (
    BOOTSTRAP,
    CACHE,
    REDIS_URL,
    alternated,
    cleanup,
    env_for,
    log,
    metric,
    read_topic,
    ready_after,
    scrape,
    service,
    signal_key,
    wait,
    worker,
)
from bench.live.data import bench_rules_mix, broad_market
from bench.live.drain import backtest, processor_drain
from bench.live.ingest import ingest
from bench.live.latency import Subscriber, tick_origins, ts_ms
from bench.live.latency_stats import percentiles
from schemas.level import Level
from services.backtest.levels import write_levels
from services.runtime.heap import freeze_heap
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from tests.integration.api_client import Api
from tests.support.services import free_port

ARMED = "marketsignal_processor_levels_armed"
# How often the arming step reads the gauge: the figures' resolution.
POLL_S = 0.002
SYMBOL = "2513.HK"
# The latency step's swing: 1,000 ticks from its top down to 395 and back up, each top
# 0.01 over the last one (a new high); the levels sit inside the swing.
SWING = 1000
LEVELS_AT = [{"above": 399.0}, {"above": 401.0}, {"above": 402.5}]
LEVELS_AT += [{"below": 403.0}, {"below": 400.5}, {"below": 398.0}]
# Firings of the first seconds are left out: the path's first alerts pay for cold caches
# and connections, which a live service paid long before.
WARM_UP_S = 2.0


def levels_bench(quick: bool, logs: Path) -> dict[str, Any]:
    rules = bench_rules_mix("record_highs")
    out: dict[str, Any] = {
        "drain": drain(
            rules,
            40_000 if quick else 400_000,
            1_000 if quick else 10_000,
            10,
            logs,
        )
    }
    out.update(
        live(
            bench_rules_mix("every_signal"),
            20 if quick else 200,
            5000,
            8.0 if quick else 20.0,
            logs,
        )
    )
    return out


# -- drain ------------------------------------------------------------------------------------


def first_prices(data: Path) -> dict[str, float]:
    """Each symbol of the ticks file `data` with its first price, in order of appearance."""
    first: dict[str, float] = {}
    with data.open(encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            fields = line.split(",", 3)
            first.setdefault(fields[0], float(fields[2]))
    return first


def level_records(first: dict[str, float], per_symbol: int, *, apart: float = 0.02) -> list[Level]:
    """`per_symbol` levels on every symbol of `first`, half above and half below its first
    price, `apart` from it and from each other outwards (2%: where people set them,
    round moves away, many never reached in a day), 1,000 to a subscription."""
    levels: list[Level] = []
    now = datetime.now(UTC)
    for symbol, price in first.items():
        for k in range(per_symbol):
            step = 1 + k // 2
            side = "above" if k % 2 == 0 else "below"
            x = price * (1 + apart * step) if side == "above" else price / (1 + apart * step)
            x = round(x, 4)
            n = len(levels)
            levels.append(
                Level.model_validate(
                    {
                        "symbol": symbol,
                        side: x,
                        "level_id": f"bench{n:011d}",
                        "subscription_id": f"{n // 1000:016x}",
                        "created_at": now,
                    }
                )
            )
    return levels


def publish_levels(topic: str, levels: list[Level]) -> None:
    """The records the API writes (`services/subscriptions/levels.py`), all at once."""
    producer = KafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=20, batch_size=1 << 20
    )
    try:
        for level in levels:
            producer.send(
                topic, key=level.level_id.encode(), value=level.model_dump_json().encode()
            )
        producer.flush()
    finally:
        producer.close()


def drain(rules: Path, n: int, n_symbols: int, per_symbol: int, logs: Path) -> dict[str, Any]:
    data = CACHE / f"broad-{n}-{n_symbols}.csv"
    if not data.exists():
        broad_market(data, n, n_symbols, seed=22)
    first = first_prices(data)
    levels = level_records(first, per_symbol)
    # The same number of levels out of the day's reach (100% apart): what holding and
    # checking them costs, without the firings.
    quiet = level_records(first, per_symbol, apart=1.0)
    levels_file = logs / "levels-drain.jsonl"
    write_levels(levels_file, levels)
    log(
        f"levels drain: {n:,} ticks over {n_symbols:,} symbols: none, "
        f"{len(levels):,} levels, as many quiet ones"
    )
    runs: dict[str, list[dict[str, Any]]] = {"none": [], "levels": [], "quiet": []}
    fired: list[str] = []
    for case in alternated(("none", "levels", "quiet"), 3):
        namespace = f"bench.lvl.{uuid.uuid4().hex[:8]}."
        try:
            ingest(namespace, rules, data, logs, bundles=True)
            if case != "none":
                topic = Settings(namespace=namespace).levels_topic
                publish_levels(topic, levels if case == "levels" else quiet)
            figures = processor_drain(namespace, rules, n, logs)
            signals = [json.loads(r.value) for r in read_topic(namespace + "signals")]
        finally:
            cleanup(namespace)
        figures["price_level_firings"] = sum(1 for s in signals if s["kind"] == "price_level")
        runs[case].append(figures)
        log(
            f"levels drain, {case}: {figures['rate']:,.0f} ticks/s, "
            f"RSS {figures['rss_mb'][0]:.0f} MB, {figures['price_level_firings']:,} firings"
        )
        if case == "levels" and not fired:
            fired = firings(signals)
    out_file = logs / "backtest-levels.jsonl"
    bt = backtest(data, rules, out_file, levels=levels_file)
    expected = firings([json.loads(line) for line in out_file.read_text().splitlines()])

    def median(case: str, key: str) -> float:
        return float(
            statistics.median(r[key][0] if isinstance(r[key], list) else r[key] for r in runs[case])
        )

    return {
        "ticks": n,
        "symbols": n_symbols,
        "levels": len(levels),
        "runs": runs,
        "rate_none": median("none", "rate"),
        "rate_levels": median("levels", "rate"),
        "ratio": median("levels", "rate") / median("none", "rate"),
        "rss_none_mb": median("none", "rss_mb"),
        "rss_levels_mb": median("levels", "rss_mb"),
        "rss_growth_mb": median("levels", "rss_mb") - median("none", "rss_mb"),
        "rate_quiet_levels": median("quiet", "rate"),
        "ratio_quiet_levels": median("quiet", "rate") / median("none", "rate"),
        "quiet_levels_firings": max(r["price_level_firings"] for r in runs["quiet"]),
        "start_to_lag_zero_none_s": median("none", "lag_drain_wall_s"),
        "start_to_lag_zero_levels_s": median("levels", "lag_drain_wall_s"),
        "backtest_firings": len(expected),
        "backtest_rate": bt["rate"],
        "firings_equal_backtest": fired == expected,
    }


def firings(signals: list[dict[str, Any]]) -> list[str]:
    """The price_level signals, comparable: a backtest's carry no subscription."""
    return sorted(
        signal_key({k: v for k, v in s.items() if k != "subscription_id"})
        for s in signals
        if s["kind"] == "price_level"
    )


# -- arming and latency -----------------------------------------------------------------------


def armed(port: int) -> int:
    return int(metric(scrape(port), ARMED) or 0)


def until(check: Any, timeout_s: float) -> float:
    """perf_counter() at the first poll where `check()` holds."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(POLL_S)
    raise RuntimeError(f"not within {timeout_s}s")


class StreamReader(threading.Thread):
    """The subscription's owner: XREAD BLOCK on its stream, receive times."""

    def __init__(self, key: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(REDIS_URL)
        self.key = key
        self.received: list[tuple[float, bytes]] = []
        self.stopping = False
        freeze_heap()

    def run(self) -> None:
        last: Any = "0-0"
        while not self.stopping:
            answer: Any = self.client.xread({self.key: last}, block=200, count=1000)
            for _, entries in answer or []:
                now = time.time()
                for entry_id, fields in entries:
                    last = entry_id
                    self.received.append((now, fields[b"alert"]))

    def stop(self) -> None:
        self.stopping = True
        self.join(timeout=5)
        self.client.close()


def swing_ticks(path: Path, n: int) -> None:
    """`n` ticks of SYMBOL, starting at a swing's top, a swing a day in event time: each
    new top is the first record high of its date, which the debounce lets through. The
    ticks' ts are unique (how alerts find their tick)."""
    start_ms = 1_770_946_200_000  # 2026-02-13T01:30:00Z
    step_ms = 86_400_000 // SWING
    rng = random.Random(22)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("symbol,ts,price,volume,kind\n")
        half = SWING // 2
        for i in range(n):
            k, j = divmod(i + half, SWING)
            top = 405 + 0.01 * k
            price = top - 10 * (j - half) / half if j >= half else top - 0.01 - 10 + 10 * j / half
            fh.write(f"{SYMBOL},{start_ms + i * step_ms},{price:.3f},{rng.randint(1, 500)},trade\n")


def live(rules: Path, n_arm: int, rate: int, seconds: float, logs: Path) -> dict[str, Any]:
    namespace = f"bench.lvlive.{uuid.uuid4().hex[:8]}."
    env = env_for(namespace, rules)
    api_port = free_port()
    api = Api(f"http://127.0.0.1:{api_port}", Settings(namespace=namespace))
    keys = RedisKeys(namespace)
    out: dict[str, Any] = {}
    try:
        with (
            worker(env, logs / "levels-process.log") as (proc, p_port),
            service(
                ["alert", "--metrics-port", str(free_port())],
                env | {"MARKETSIGNAL_API_PORT": str(api_port)},
                logs / "levels-alert.log",
            ) as alerter,
        ):
            ready_after(proc, p_port, "the processor's /readyz", 180)
            wait("the API", lambda: _answers(api), 60, alerter)
            status, body = api.call(
                "POST",
                "/subscriptions",
                {"name": "levels bench", "filters": {"symbols": ["NONE.XX"]}, "frequency": "every"},
            )
            if status != 201:
                raise RuntimeError(f"subscription: {status} {body}")
            sub = str(body["subscription"]["id"])
            out["arming"] = arming(api, sub, p_port, n_arm)
            out["latency"] = latency(api, sub, namespace, rules, keys, p_port, rate, seconds, logs)
            if alerter.poll() is not None:
                raise RuntimeError("the alerter exited; see levels-alert.log")
    finally:
        cleanup(namespace)
    return out


def arming(api: Api, sub: str, port: int, n: int) -> dict[str, Any]:
    """API 201 to armed, and 204 to disarmed, one level at a time on an idle stack."""
    log(f"levels: arming latency, {n} levels created then deleted one at a time")
    rng = random.Random(22)
    armed_s: list[float] = []
    created: list[str] = []
    base = armed(port)
    for i in range(n):
        status, body = api.call(
            "POST", f"/subscriptions/{sub}/levels", {"symbol": "0700.HK", "above": 1000 + i}
        )
        answered = time.perf_counter()
        if status != 201:
            raise RuntimeError(f"level: {status} {body}")
        created.append(str(body["level_id"]))
        armed_s.append(until(lambda want=base + i + 1: armed(port) >= want, 10) - answered)
        time.sleep(rng.uniform(0, 0.05))  # not in step with anything periodic
    disarmed_s: list[float] = []
    for i, level_id in enumerate(created):
        status, body = api.call("DELETE", f"/subscriptions/{sub}/levels/{level_id}")
        answered = time.perf_counter()
        if status != 204:
            raise RuntimeError(f"delete: {status} {body}")
        disarmed_s.append(until(lambda want=base + n - i - 1: armed(port) <= want, 10) - answered)
        time.sleep(rng.uniform(0, 0.05))
    return {
        "armed": percentiles(armed_s),
        "disarmed": percentiles(disarmed_s),
        "poll_ms": POLL_S * 1000,
    }


def latency(
    api: Api,
    sub: str,
    namespace: str,
    rules: Path,
    keys: RedisKeys,
    port: int,
    rate: int,
    seconds: float,
    logs: Path,
) -> dict[str, Any]:
    base = armed(port)
    for spec in LEVELS_AT:
        status, body = api.call("POST", f"/subscriptions/{sub}/levels", {"symbol": SYMBOL, **spec})
        if status != 201:
            raise RuntimeError(f"level: {status} {body}")
    until(lambda: armed(port) == base + len(LEVELS_AT), 10)
    n = int(rate * seconds)
    data = logs / "levels-swing.csv"
    swing_ticks(data, n)
    own = StreamReader(keys.stream(sub))
    shared = Subscriber(namespace)
    own.start()
    shared.start()
    log(f"levels: {n:,} ticks of one symbol at {rate:,}/s, {len(LEVELS_AT)} levels in its swing")
    try:
        paced = ingest(namespace, rules, data, logs, bundles=True, rate=rate)
        # Every swing fires each level once: wait for them all, then a moment for the rest.
        swings = n // SWING
        wait(
            "the levels' firings",
            lambda: len(own.received) >= swings * len(LEVELS_AT) - len(LEVELS_AT),
            120,
        )
        time.sleep(1.5)
    finally:
        own.stop()
        shared.stop()
    origin = tick_origins(namespace + "ticks")
    first = min(origin.values())
    delays: dict[str, list[float]] = {"price_level": [], "record_high": []}
    kinds: Counter[str] = Counter()
    for received, payload in own.received + shared.received:
        alert = json.loads(payload)
        kinds[alert["kind"]] += 1
        sent = origin.get(ts_ms(alert["signal"]["ts"]))
        if sent is not None and sent - first >= WARM_UP_S and alert["kind"] in delays:
            delays[alert["kind"]].append(received - sent)
    return {
        "rate": rate,
        "ticks": n,
        "achieved_rate": n / paced["wall_s"],
        "warm_up_s": WARM_UP_S,
        "alerts": dict(kinds),
        "price_level": percentiles(delays["price_level"]),
        "record_high": percentiles(delays["record_high"]),
    }


def _answers(api: Api) -> bool:
    try:
        return api.call("GET", "/subscriptions")[0] == 200
    except OSError:
        return False


def print_levels(figures: dict[str, Any]) -> None:
    d = figures["drain"]
    print(
        f"  levels drain, {d['levels']:,} levels over {d['symbols']:,} symbols: "
        f"{d['rate_levels']:,.0f} ticks/s vs {d['rate_none']:,.0f} with none "
        f"({d['ratio']:.2f}x), RSS +{d['rss_growth_mb']:.0f} MB "
        f"({d['rss_none_mb']:.0f} -> {d['rss_levels_mb']:.0f}), "
        f"{d['backtest_firings']:,} firings, equal to the backtest: {d['firings_equal_backtest']}"
    )
    print(
        f"  levels drain, {d['levels']:,} levels the day never reaches: "
        f"{d['rate_quiet_levels']:,.0f} ticks/s ({d['ratio_quiet_levels']:.2f}x), "
        f"{d['quiet_levels_firings']} firings"
    )
    for what in ("armed", "disarmed"):
        a = figures["arming"][what]
        print(
            f"  levels {what} after the API's answer: n={a['n']} p50 {a['p50_ms']:.1f} "
            f"p99 {a['p99_ms']:.1f} max {a['max_ms']:.1f} ms"
        )
    lat = figures["latency"]
    for kind in ("price_level", "record_high"):
        p = lat[kind]
        print(
            f"  levels latency at {lat['rate']:,}/s on one symbol, {kind}: n={p['n']} "
            f"p50 {p.get('p50_ms', 0):.1f} p99 {p.get('p99_ms', 0):.1f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live.levels", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    args = parser.parse_args()
    logs = CACHE / f"levels-run-{uuid.uuid4().hex[:8]}"
    logs.mkdir(parents=True)
    log(f"levels: load {os.getloadavg()[0]:.2f} at start, logs in {logs}")
    figures = levels_bench(args.quick, logs)
    (logs / "levels.json").write_text(json.dumps(figures, indent=2) + "\n")
    print_levels(figures)
    return 0


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        raise SystemExit(main())
