"""Benchmark: alerter delivery throughput with 1, 100 and 10,000 subscriptions.

Against the real local Redis (`make stack-up`), in a namespace of its own that is
removed afterwards. For each subscription count it creates that many subscriptions
(random watch lists over 500 symbols, some `*.HK`-style globs, kinds, minimum change),
then delivers 20,000 alerts in batches of 500 exactly as the alerter does (the shared
stream and channels, then every matching subscription's stream, one Lua script each)
and prints alerts/s, per-subscription deliveries/s, and the matching cost alone (the
index, and for comparison a scan of every subscription). Kafka is left out: it is the
same with or without subscriptions. A benchmark prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import timedelta

from bench.delivery_common import SYMBOLS, T0, own_namespace, random_alert, reachable_settings
from schemas.alert import Alert
from schemas.subscription import SubscriptionSpec
from services.alerter.delivery import RedisDelivery
from services.runtime.settings import Settings
from services.subscriptions.fanout import SubscriptionFanout
from services.subscriptions.matching import SubscriptionIndex, accepts
from services.subscriptions.registry import SubscriptionRegistry
from tests.support import factories

BATCH = 500


def spec(rng: random.Random, i: int) -> SubscriptionSpec:
    return factories.watch_list(rng, i, SYMBOLS, name="bench")


def alerts(rng: random.Random, n: int) -> list[Alert]:
    return [random_alert(rng, T0 + timedelta(milliseconds=i), T0) for i in range(n)]


def run(base: Settings, n_subs: int, items: list[Alert]) -> None:
    with own_namespace(base) as (s, client):
        rng = random.Random(n_subs)
        registry = SubscriptionRegistry(client, s)
        started = time.perf_counter()
        for i in range(n_subs):
            registry.create(spec(rng, i))
        created_s = time.perf_counter() - started
        subs = registry.list_all()

        index = SubscriptionIndex(subs)
        started = time.perf_counter()
        matched = sum(len(index.match(a.signal)) for a in items)
        index_rate = len(items) / (time.perf_counter() - started)
        sample = items[:500]
        started = time.perf_counter()
        for a in sample:
            [x for x in subs if accepts(x.filters, a.signal)]
        scan_rate = len(sample) / (time.perf_counter() - started)

        # The alerter's two steps, here in one thread: the shared delivery, then the fan-out
        # (the alerter's fan-out worker does the second off its Kafka loop).
        shared = RedisDelivery(client, s)
        fanout = SubscriptionFanout(client, s)
        started = time.perf_counter()
        for i in range(0, len(items), BATCH):
            batch = items[i : i + BATCH]
            shared.deliver(batch)
            fanout.fan_out(batch)
        wall = time.perf_counter() - started
        print(
            f"{n_subs:>6} subscriptions: {len(items) / wall:>8,.0f} alerts/s delivered "
            f"({fanout.stats.delivered:,} subscription deliveries, "
            f"{fanout.stats.delivered / wall:,.0f}/s; {matched / len(items):.1f} per alert) | "
            f"matching alone: index {index_rate:,.0f} alerts/s, scan {scan_rate:,.0f} alerts/s | "
            f"registry: {n_subs / created_s:,.0f} creates/s",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--subs", type=int, nargs="*", default=[0, 1, 100, 10_000])
    args = parser.parse_args()
    base = reachable_settings()
    items = alerts(random.Random(7), args.alerts)
    print(
        f"alerter delivery, {args.alerts:,} alerts in batches of {BATCH}, "
        f"Redis {base.redis_location}"
    )
    for n in args.subs:
        run(base, n, items)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
