"""What the delivery benchmarks (bench_alerter, bench_fanout) share: their symbols and
random alerts, the configured Redis, checked to answer, and a namespace of its own per
run whose keys are dropped afterwards."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import redis

from schemas.alert import Alert
from services.runtime.settings import Settings
from tests.support import factories
from tests.support.live import drop_namespace

SYMBOLS = [f"{i:04d}.HK" for i in range(250)] + [f"{600000 + i}.SH" for i in range(250)]
T0 = datetime(2026, 2, 13, 1, 30, tzinfo=UTC)


def random_alert(rng: random.Random, ts: datetime, emitted_at: datetime | None = None) -> Alert:
    """A record high at `ts` of one of SYMBOLS, 0-3% above its previous high (100 at T0)."""
    change = rng.uniform(0, 3)
    signal = factories.record_high(
        rng.choice(SYMBOLS), ts, 100 + change, previous_high_ts=T0, change_pct=change
    )
    return factories.alert(signal, emitted_at)


def reachable_settings() -> Settings:
    """The settings from the environment, once their Redis answers: fail before measuring."""
    base = Settings()
    redis.Redis.from_url(base.redis_url).ping()
    return base


@contextmanager
def own_namespace(base: Settings) -> Iterator[tuple[Settings, redis.Redis]]:
    """`base` in a fresh namespace, and a client of its Redis, for one run."""
    s = base.model_copy(update={"namespace": f"bench.{uuid.uuid4().hex[:8]}."})
    client = redis.Redis.from_url(s.redis_url)
    try:
        yield s, client
    finally:
        client.close()
        drop_namespace(s, s.namespace, topics=False)
