"""A subscriber's own price levels through the whole pipeline, against `backtest --levels`.

Levels are created through the subscriptions API (served by the alerter, as `make up`
runs it) on the real Kafka and Redis: two before the feed; between its two halves one
of them is deleted, another created, and the processor killed with SIGKILL and
restarted, which must then hold the two live levels and not the deleted one. The demo
is replayed with the real ingestor and processor; the subscription's own stream must
then hold exactly the firings `backtest --levels` finds on the same ticks (the level
created half-way: its firings on the second half; the one deleted: on the first), each
once, and no price_level may reach the shared `alerts` stream, any `alerts:*` channel,
or another subscription that takes every alert of the symbol.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import redis

from schemas.alert import Alert, alert_id_for
from schemas.level import Level
from schemas.signals import SIGNAL_ADAPTER, PriceLevel
from services.backtest.levels import read_levels, write_levels
from services.backtest.run import run_backtest
from services.detection.rules import Rules
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from tests.e2e.test_pipeline import BUNDLES, DEMO, RATE, paced_rules, stream_alerts, wait_drained
from tests.integration.api_client import Api
from tests.support import factories
from tests.support.live import Subscriber
from tests.support.services import ROOT, Service, free_port
from tests.support.stack import SettingsFactory
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

TOKEN = "levels-e2e-token-0123456789abcdef"
# Before the feed: the demo's own level (deploy/demo/levels.jsonl), which fires on 12
# February. Between the feed's halves: a level below 380, which Zhipu crosses on 11
# February once before the cut (a firing the stream must not have) and 8 times after.
BEFORE = {"symbol": "2513.HK", "above": 400}
DURING = {"symbol": "2513.HK", "below": 380}
CUT = "2513.HK,2026-02-11T12:00:00"  # the second half starts at this line


def halves(tmp_path: Path) -> tuple[Path, Path]:
    """The demo's ticks cut in two files at CUT, each with the header."""
    header, *rows = DEMO.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, row in enumerate(rows) if row.startswith(CUT))
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(header + "".join(rows[:at]), encoding="utf-8")
    second.write_text(header + "".join(rows[at:]), encoding="utf-8")
    return first, second


def backtest_levels(ticks: Path, rules: Path, levels: list[Level], tmp_path: Path) -> list[str]:
    """`backtest --levels` of `ticks`: its price_level firings, as JSON lines, with each
    level's subscription put back (a backtest's firings carry none)."""
    path = tmp_path / "levels.jsonl"
    write_levels(path, levels)
    out = io.BytesIO()
    summary = run_backtest(
        ticks, Rules.load(rules), out, io.StringIO(), progress=False, levels=read_levels(path)
    )
    assert summary.malformed == 0
    owner = {lv.level_id: lv.subscription_id for lv in levels}
    fired = []
    for line in out.getvalue().splitlines():
        signal = SIGNAL_ADAPTER.validate_json(line)
        if isinstance(signal, PriceLevel):
            fired.append(
                signal.model_copy(
                    update={"subscription_id": owner[signal.level_id]}
                ).model_dump_json()
            )
    return fired


def create_level(api: Api, sub: str, spec: dict[str, object]) -> Level:
    status, body = api.call("POST", f"/subscriptions/{sub}/levels", spec)
    assert status == 201, body
    return Level.model_validate(body)


def ingest(env: dict[str, str], path: Path, bundles: bool) -> None:
    """The real ingestor replays `path` to its end (tick bundles or one tick a record)."""
    command = [sys.executable, "-m", "services.cli", "ingest", str(path), "--rate", RATE]
    command += [] if bundles else ["--no-bundle"]
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr


@BUNDLES
def test_levels_set_before_and_during_a_feed_fire_on_their_subscription_only(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, bundles: bool
) -> None:
    port = free_port()
    s: Settings = settings(partitions=6, api_tokens=(TOKEN,))
    rules = paced_rules(tmp_path)
    env = factories.service_env(
        s,
        rules,
        state_dir=ROOT / ".local" / "state" / "e2e",
        processor_metrics_port=0,
        alerter_metrics_port=0,
        ingestor_metrics_port=0,
        api_host="127.0.0.1",
        api_port=port,
        api_tokens=[TOKEN],
    )
    first, second = halves(tmp_path)
    keys = RedisKeys(s.namespace)
    live = Subscriber(redis_client, s.redis_key("alerts:*"), s.redis_key("alerts:marker:sync"))
    alerter = Service("alerter", ["alert"], env, tmp_path)
    metrics_port = free_port()
    processor = Service(
        "processor",
        ["process", "--web-port", str(free_port())],
        {**env, "MARKETSIGNAL_PROCESSOR_METRICS_PORT": str(metrics_port)},
        tmp_path,
    )
    services = [processor, alerter]
    api = Api(f"http://127.0.0.1:{port}", s, TOKEN)
    try:
        wait_for("the API", lambda: _answers(api), 60, services)
        # Its filters take no shared alert: its stream holds its levels' firings alone.
        status, body = api.call(
            "POST", "/subscriptions", {"name": "mine", "filters": {"symbols": ["NONE.XX"]}}
        )
        assert status == 201, body
        mine = str(body["subscription"]["id"])
        # Takes every alert of the symbol: none of another subscription's levels.
        status, body = api.call(
            "POST", "/subscriptions", {"name": "other", "filters": {"symbols": ["2513.HK"]}}
        )
        assert status == 201, body
        other = str(body["subscription"]["id"])
        before = create_level(api, mine, BEFORE)
        # The same as DURING but set before the feed and deleted at the cut.
        gone = create_level(api, mine, DURING)
        wait_for("the levels armed", lambda: armed(metrics_port) == 2, 30, services)
        ingest(env, first, bundles)
        wait_drained(s, services)
        status, body = api.call("DELETE", f"/subscriptions/{mine}/levels/{gone.level_id}")
        assert status == 204, body
        during = create_level(api, mine, DURING)
        # A kill -9 at the cut: the restarted worker reads the levels topic again and
        # must hold the two live levels, not the deleted one.
        processor.kill()
        processor = Service(
            "processor-2",
            ["process", "--web-port", str(free_port())],
            {**env, "MARKETSIGNAL_PROCESSOR_METRICS_PORT": str(metrics_port)},
            tmp_path,
        )
        services = [processor, alerter]
        wait_for("the restarted processor ready", lambda: ready(metrics_port), 90, services)
        assert armed(metrics_port) == 2
        ingest(env, second, bundles)
        wait_drained(s, services)

        levels = [before, during, gone]
        whole = Counter(backtest_levels(DEMO, rules, levels, tmp_path))
        half = Counter(backtest_levels(first, rules, levels, tmp_path))
        # The level created at the cut fires from the second half on, the level deleted
        # there on the first half only: the backtest of the first half, with every
        # level, holds the firings of each half.
        early = Counter({x: n for x, n in half.items() if during.level_id in x})
        late = Counter({x: n for x, n in (whole - half).items() if gone.level_id in x})
        expected = list((whole - early - late).elements())
        assert sum(early.values()) >= 1  # the cut does leave a firing out
        assert sum(late.values()) >= 1
        per_level = Counter(json.loads(x)["level_id"] for x in expected)
        assert per_level[before.level_id] >= 2
        assert per_level[during.level_id] >= 2
        assert per_level[gone.level_id] >= 1
        stream = keys.stream(mine)
        wait_for(
            f"{len(expected)} firings in {stream}",
            lambda: int(redis_client.xlen(stream)) >= len(expected),
            120,
            services,
        )
        wait_for(
            "the fan-out queue drained",
            lambda: int(redis_client.xlen(keys.fanout_queue)) == 0,
            60,
            services,
        )
        messages = live.sync()
    finally:
        live.close()
        for svc in services:
            svc.stop()

    got = stream_alerts(redis_client, stream)
    assert len({a.alert_id for a in got}) == len(got), "a firing delivered twice"
    assert sorted(a.signal.model_dump_json() for a in got) == sorted(expected)
    assert {a.alert_id for a in got} == {
        alert_id_for(SIGNAL_ADAPTER.validate_json(x)) for x in expected
    }
    # In the backtest's order per level.
    firings = [a.signal for a in got if isinstance(a.signal, PriceLevel)]
    for level in (before, during, gone):
        mine_order = [f.model_dump_json() for f in firings if f.level_id == level.level_id]
        assert mine_order == [x for x in expected if json.loads(x)["level_id"] == level.level_id]
    # Nowhere else: not the shared stream, no channel, not the other subscription.
    shared = stream_alerts(redis_client, s.redis_key("alerts"))
    assert shared
    assert not [a for a in shared if a.kind == "price_level"]
    assert not [c for c, _ in messages if ":price_level:" in c]
    assert not [
        a
        for a in (Alert.model_validate_json(data) for _, data in messages)
        if a.kind == "price_level"
    ]
    theirs = stream_alerts(redis_client, keys.stream(other))
    assert theirs
    assert not [a for a in theirs if a.kind == "price_level"]


def armed(metrics_port: int) -> int | None:
    """The processor's armed levels, as its /metrics says (None: not serving yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("marketsignal_processor_levels_armed "):
            return int(float(line.split()[1]))
    return None


def ready(metrics_port: int) -> bool:
    """The processor's /readyz: 200 once assigned, recovered and the levels read."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=5) as r:
            return int(r.status) == 200
    except OSError:  # not serving yet, or 503
        return False


def _answers(api: Api) -> bool:
    try:
        status, _ = api.call("GET", "/subscriptions")
    except OSError:  # not listening yet
        return False
    return status == 200
