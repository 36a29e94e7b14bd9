"""Kill -9 of the processor while subscribers' price levels are armed: exact firings.

The fault suite's workload (tests/faults/workload.py) replayed with levels armed through
the same `LevelStore` the API uses (a record each on the compacted levels topic) before
the feed starts: levels on drifting stocks and on the A-shares that swing between their
limits every twenty minutes, so they fire all through the replay. The worker (or a random
one of two) is killed with SIGKILL at random points and restarted at once, as under the
supervisor.
Then the levels' subscription's own stream must hold exactly what `backtest --levels`
finds on the same ticks (0 missing, 0 extra, 0 duplicate, each level's firings in the
backtest's order), and the shared stream exactly the backtest's other alerts, as in
test_kills.py. A restart that lost a level, or a p that was not the state's, would show
as missing or extra firings; a replayed firing as a duplicate.
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from pathlib import Path

import pytest
import redis

from schemas.alert import alert_id_for
from schemas.level import Level, LevelSpec
from schemas.signals import SIGNAL_ADAPTER, PriceLevel
from schemas.subscription import SubscriptionSpec
from services.backtest.levels import read_levels, write_levels
from services.backtest.run import run_backtest
from services.detection.rules import Rules
from services.runtime.redis_keys import RedisKeys
from services.subscriptions.levels import LevelStore
from services.subscriptions.registry import SubscriptionRegistry
from tests.e2e.test_pipeline import stream_alerts
from tests.faults.components import Fault
from tests.faults.harness import Pipeline
from tests.faults.scenario import (
    KILLS,
    RATE,
    SECONDS_PER_KILL,
    SEED,
    Report,
    check,
    fault_pipeline,
    kill_cycles,
)
from tests.faults.workload import LIMITED, STOCKS
from tests.support.stack import SettingsFactory
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

# (symbol, side, X). The stocks start at 50 + 10 i and drift up about 7% a day with
# 0.3% noise a minute: levels a little above their start are crossed, up and down,
# for a while. The A-shares start at 20, 30 and 40 and swing to their limits (10%, 5%,
# 20%) and back every twenty minutes: crossed both ways many times a day.
SHARES = list(LIMITED)
LEVELS = [
    (STOCKS[0], "above", 51.0),
    (STOCKS[0], "below", 52.0),
    (STOCKS[1], "above", 61.5),
    (STOCKS[3], "above", 82.0),
    (STOCKS[3], "below", 81.0),
    (SHARES[0], "above", 21.0),
    (SHARES[0], "below", 19.0),
    (SHARES[1], "above", 30.5),
    (SHARES[2], "below", 38.0),
]


def arm_levels(pipe: Pipeline, client: redis.Redis) -> tuple[str, list[Level]]:
    """A subscription that takes no shared alert, and its levels, published (acked)."""
    registry = SubscriptionRegistry(client, pipe.s)
    sub, _ = registry.create(
        SubscriptionSpec.model_validate({"name": "levels", "filters": {"symbols": ["NONE.XX"]}})
    )
    store = LevelStore(client, pipe.s)
    levels = []
    try:
        for symbol, side, x in LEVELS:
            level = store.create(sub.id, LevelSpec.model_validate({"symbol": symbol, side: x}))
            assert isinstance(level, Level), level
            levels.append(level)
    finally:
        store.close()
    return sub.id, levels


def expected_firings(pipe: Pipeline, levels: list[Level], tmp_path: Path) -> list[str]:
    """`backtest --levels` on the replayed ticks: the firings as the stream must carry
    them (with their subscription, which a backtest's firings leave out)."""
    path = tmp_path / "levels.jsonl"
    write_levels(path, levels)
    out = io.BytesIO()
    run_backtest(
        pipe.ticks,
        Rules.load(pipe.rules),
        out,
        io.StringIO(),
        progress=False,
        levels=read_levels(path),
    )
    owner = {lv.level_id: lv.subscription_id for lv in levels}
    fired = []
    for line in out.getvalue().splitlines():
        signal = SIGNAL_ADAPTER.validate_json(line)
        if isinstance(signal, PriceLevel):
            signal = signal.model_copy(update={"subscription_id": owner[signal.level_id]})
            fired.append(signal.model_dump_json())
    return fired


# One worker, or two: every worker holds every level, whichever partitions it has.
@pytest.mark.parametrize("workers", [1, 2])
def test_processor_kill9_with_levels_armed(
    settings: SettingsFactory,
    redis_client: redis.Redis,
    tmp_path: Path,
    report: Report,
    workers: int,
) -> None:
    pipe = fault_pipeline(settings, redis_client, tmp_path, KILLS * SECONDS_PER_KILL + 40)
    rng = random.Random(SEED + 3 + workers)
    names = [f"worker-{n}" for n in range(1, workers + 1)]
    keys = RedisKeys(pipe.s.namespace)
    sub_id, levels = arm_levels(pipe, redis_client)
    expected = expected_firings(pipe, levels, tmp_path)
    per_level = Counter(json.loads(x)["level_id"] for x in expected)
    # Firings all through the replay, on most of the levels.
    assert len(per_level) >= 6, per_level
    assert len(expected) >= 100, per_level
    try:
        for name in names:
            pipe.start_processor(name)
        pipe.start_alerter()
        pipe.start_feed(RATE)

        def strike() -> Fault:
            victim = rng.choice(names)
            fault = pipe.kill_processor(victim)
            pipe.start_processor(victim)  # as the supervisor does, at once
            return fault

        faults = kill_cycles(pipe, rng, KILLS, strike)
        check(pipe, report)  # the shared stream: exact, and no price_level in it
        stream = keys.stream(sub_id)
        wait_for(
            f"{len(expected)} firings in {stream}",
            lambda: int(redis_client.xlen(stream)) >= len(expected),
            120,
            pipe.services(),
        )
        wait_for(
            "the fan-out queue drained",
            lambda: int(redis_client.xlen(keys.fanout_queue)) == 0,
            60,
            pipe.services(),
        )
    finally:
        pipe.stop_all()
    got = stream_alerts(redis_client, stream)
    want = Counter(alert_id_for(SIGNAL_ADAPTER.validate_json(x)) for x in expected)
    have = Counter(a.alert_id for a in got)
    missing = sum((want - have).values())
    extra = sum(n for i, n in have.items() if i not in want)
    duplicates = sum(n - 1 for n in have.values() if n > 1)
    report(
        f"{len(faults)} kill -9 ({workers} worker(s)) with {len(levels)} levels armed: "
        f"{len(expected)} firings expected, {len(got)} delivered: {missing} missing, "
        f"{extra} extra, {duplicates} duplicates (seed {SEED})"
    )
    assert (missing, extra, duplicates) == (0, 0, 0)
    firings = [a.signal for a in got if isinstance(a.signal, PriceLevel)]
    for level in levels:
        order = [f.model_dump_json() for f in firings if f.level_id == level.level_id]
        assert order == [x for x in expected if json.loads(x)["level_id"] == level.level_id]
