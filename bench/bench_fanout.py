"""Benchmark: alert latency to every subscriber, 10,000 subscriptions, 20 alerts/s.

Against the real Redis of the local stack (`make stack-up`), in a namespace of its own
that is removed afterwards. It creates 10,000 subscriptions, half of them match-all
(`{}`: every alert), the others random watch lists over 500 symbols with globs (some
with a wildcard in the middle: `0?12.*`, `*0042?.HK`), kinds and minimum changes. Then,
as the alerter does, a "Kafka loop" thread hands one alert every 1/20 s to the shared
delivery, which queues it for the fan-out worker (`RedisDelivery(queue=...)`), while
`FanoutWorker` fans the queue out; meanwhile a registry change (a create or a delete)
lands every 0.2 s, applied incrementally by the worker.

Latency of a delivery = the Redis time of its entry in the subscriber's stream (the
entry id, written by the fan-out script) minus the alert's `emitted_at` (when the loop
took it). Every entry of every subscriber's stream is read back, so p50 and p99 are over
all (alert, subscription) deliveries. It also prints the Kafka loop's own cost per
alert with the fan-out queued (this design) and with the fan-out inside the loop (the
shared delivery then `SubscriptionFanout.fan_out`, the previous design), as a ratio. A
benchmark prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from datetime import timedelta

from bench.delivery_common import SYMBOLS, T0, own_namespace, random_alert, reachable_settings
from schemas.alert import Alert
from schemas.subscription import SubscriptionSpec
from services.alerter.delivery import RedisDelivery
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.fanout import SubscriptionFanout
from services.subscriptions.fanout_worker import FanoutWorker
from services.subscriptions.handoff import FanoutQueue
from services.subscriptions.registry import SubscriptionRegistry
from tests.support import factories


def watch_list(rng: random.Random, i: int) -> SubscriptionSpec:
    return factories.watch_list(rng, i, SYMBOLS, mid_wildcards=0.1, globs=0.02)


def alert(rng: random.Random, i: int) -> Alert:
    return random_alert(rng, T0 + timedelta(seconds=i))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(base: Settings, n_subs: int, rate: float, seconds: float, churn_s: float) -> None:
    with own_namespace(base) as (s, client):
        rng = random.Random(42)
        registry = SubscriptionRegistry(client, s)
        keys = RedisKeys(s.namespace)
        started = time.perf_counter()
        for i in range(n_subs):
            spec = SubscriptionSpec(name=f"all {i}") if i % 2 == 0 else watch_list(rng, i)
            registry.create(spec)
        print(f"{n_subs:,} subscriptions created in {time.perf_counter() - started:.1f}s")

        worker = FanoutWorker(s).start()
        shared = RedisDelivery(client, s, queue=FanoutQueue.of(s))
        stop = threading.Event()
        changes = 0

        def churn() -> None:
            nonlocal changes
            churn_rng = random.Random(7)
            made: list[str] = []
            while not stop.wait(churn_s):
                if made and churn_rng.random() < 0.5:
                    registry.delete(made.pop())
                else:
                    made.append(registry.create(watch_list(churn_rng, -1))[0].id)
                changes += 1

        churner = threading.Thread(target=churn, daemon=True)
        churner.start()
        loop_cost: list[float] = []
        sent = 0
        t_start = time.perf_counter()
        while time.perf_counter() - t_start < seconds:
            item = alert(rng, sent)
            t = time.perf_counter()
            shared.deliver([item])
            loop_cost.append(time.perf_counter() - t)
            sent += 1
            pause = t_start + sent / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        stop.set()
        churner.join()
        deadline = time.monotonic() + 120
        while int(client.xlen(keys.fanout_queue)) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.stop()

        emitted: dict[bytes, float] = {}
        latencies: list[float] = []
        match_all: list[float] = []
        ids = [sub.id for sub in registry.list_all()]
        subs = {sub.id: sub for sub in registry.list_all()}
        for i in range(0, len(ids), 500):
            pipe = client.pipeline(transaction=False)
            for sub_id in ids[i : i + 500]:
                pipe.xrange(keys.stream(sub_id))
            for sub_id, entries in zip(ids[i : i + 500], pipe.execute(), strict=True):
                everything = not subs[sub_id].filters.symbols
                for entry_id, fields in entries:
                    body = fields[b"alert"]
                    when = emitted.get(body)
                    if when is None:
                        when = Alert.model_validate_json(body).emitted_at.timestamp()
                        emitted[body] = when
                    ms = int(entry_id.split(b"-")[0])
                    latency = ms / 1000 - when
                    latencies.append(latency)
                    if everything:
                        match_all.append(latency)
        stats = worker.stats
        print(
            f"{sent} alerts at {rate:g}/s for {seconds:g}s, {changes} registry changes "
            f"(one every {churn_s:g}s), follower: {worker.fanout.live.follower.reloads} "
            f"full load(s), {worker.fanout.live.follower.changes_applied} changes applied"
        )
        print(
            f"deliveries: {len(latencies):,} ({stats.delivered:,} by the worker, "
            f"{len(latencies) / max(sent, 1):,.0f} per alert)"
        )
        print(
            f"latency to every subscriber: p50 {pct(latencies, 0.5) * 1000:.0f} ms, "
            f"p99 {pct(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
        print(
            f"latency to match-all subscribers: p50 {pct(match_all, 0.5) * 1000:.0f} ms, "
            f"p99 {pct(match_all, 0.99) * 1000:.0f} ms"
        )
        # The Kafka loop's own cost per alert: queued fan-out vs fan-out in the loop.
        inline_shared = RedisDelivery(client, s)
        inline_fanout = SubscriptionFanout(client, s)
        inline_fanout.live.current()  # its index loaded before timing, as in a warm alerter
        inline_cost: list[float] = []
        for j in range(20):
            item = alert(rng, 10_000 + j)
            t = time.perf_counter()
            inline_shared.deliver([item])
            inline_fanout.fan_out([item])
            inline_cost.append(time.perf_counter() - t)
        queued, in_loop = statistics.median(loop_cost), statistics.median(inline_cost)
        print(
            f"Kafka loop per alert (median): fan-out queued {queued * 1000:.2f} ms, "
            f"fan-out in the loop {in_loop * 1000:.1f} ms: {in_loop / queued:,.0f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subs", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--churn", type=float, default=0.2, help="seconds between changes")
    args = parser.parse_args()
    base = reachable_settings()
    print(f"fan-out latency, Redis {base.redis_location}")
    run(base, args.subs, args.rate, args.seconds, args.churn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
