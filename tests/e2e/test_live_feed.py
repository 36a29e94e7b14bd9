"""A live push source through the whole pipeline: `ingest --ws URL --adapter polygon` ->
process -> alert on the real stack, held to the backtest of the same ticks.

The feed is the Polygon-shaped WebSocket stand-in (tests/support/feed_server.py) sending
three of the demo's listings as Polygon trade arrays: Zhipu's record run (2513.HK), the
STAR newcomer's limit hits (688795.SH) and 601127.SH's limit-down day, so record highs,
price moves, limit hits and volume spikes all fire. It drops the connection half-way
and re-sends from before the drop: the re-sent trades must not count twice, so the
alerts are still the backtest's, each once. (Per-listing signals only: the demo's
divergence and A/H premium need the pacing of test_pipeline.py, which a push source
does not give.)
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from schemas.signals import SIGNAL_ADAPTER
from tests.e2e.test_pipeline import (
    DEMO,
    backtest,
    by_subject,
    paced_rules,
    seed_history,
    start_processor,
    stream_alerts,
    wait_alerts,
)
from tests.support.feed_server import FeedServer
from tests.support.live_ingest import has_read_through, ingest, scrape, stop, wait_metric
from tests.support.services import Service, free_port, service_env
from tests.support.stack import SettingsFactory

pytestmark = pytest.mark.e2e

LISTINGS = ("2513.HK", "688795.SH", "601127.SH")
TRADES_PER_MESSAGE = 20  # Polygon sends arrays of events


def demo_feed(tmp_path: Path) -> tuple[Path, list[list[dict[str, Any]]]]:
    """The listings' demo ticks as a file for the backtest, and as Polygon messages."""
    with DEMO.open(encoding="utf-8", newline="") as fh:
        rows = [row for row in csv.DictReader(fh) if row["symbol"] in LISTINGS]
    ticks = tmp_path / "ticks.csv"
    with ticks.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["symbol", "ts", "price", "volume", "kind"])
        writer.writeheader()
        writer.writerows(rows)
    trades: list[dict[str, Any]] = [
        {
            "ev": "T",
            "sym": row["symbol"],
            "x": 4,
            "i": str(i),
            "p": float(row["price"]),
            "s": int(row["volume"]),
            "c": [],
            "t": int(datetime.fromisoformat(row["ts"]).timestamp() * 1000),
            "q": i,
        }
        for i, row in enumerate(rows)
    ]
    assert {row["kind"] for row in rows} == {"trade"}  # what the adapter makes of a trade
    messages = [
        trades[i : i + TRADES_PER_MESSAGE] for i in range(0, len(trades), TRADES_PER_MESSAGE)
    ]
    return ticks, messages


def test_a_polygon_feed_through_the_pipeline_alerts_as_the_backtest_says(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path
) -> None:
    s = settings(partitions=3, processor_session_timeout_s=10)
    rules = paced_rules(tmp_path)
    ticks, messages = demo_feed(tmp_path)
    expected = backtest(ticks, rules)
    kinds = {SIGNAL_ADAPTER.validate_json(line).kind for line in expected}
    assert kinds == {"record_high", "price_move", "limit_hit", "volume_spike"}

    env = service_env(s, rules)
    processor = start_processor("processor", env, tmp_path)
    alerter = Service("alerter", ["alert"], env, tmp_path)
    services = [processor, alerter]
    drop_after = len(messages) // 2
    last_before_drop_s = messages[drop_after - 1][-1]["t"] / 1000
    metrics_port = free_port()

    delivered = has_read_through(metrics_port, last_before_drop_s)

    server = FeedServer(
        [json.dumps(m) for m in messages], drop_after, drop_after - 5, delivered=delivered
    )
    feed = None
    stream = s.redis_key("alerts")
    try:
        seed_history(s, rules, services)
        server.start()
        feed = ingest(
            s,
            "--ws",
            f"ws://127.0.0.1:{server.port}/stocks",
            "--adapter",
            "polygon",
            "--symbols",
            ",".join(LISTINGS),
            "--no-login",  # the stand-in is a relay: test_vendor_login.py logs in
            "--backoff-initial",
            "0.2",
            "--backoff-max",
            "1",
            metrics_port=metrics_port,
            bundle=True,
            env={"MARKETSIGNAL_CONFIG": str(rules)},
        )
        assert server.dropped.wait(120), "the ingestor never read the first half"
        wait_metric(metrics_port, "marketsignal_ingest_ws_reconnects_total", lambda v: v >= 1, feed)
        server.start()  # back on the same port: the ingestor reconnects and resubscribes
        wait_alerts(redis_client, s, expected, services)
        replayed = scrape(metrics_port)["marketsignal_ingest_ws_replayed_total"]
        code, err = stop(feed)
    finally:
        if feed is not None and feed.poll() is None:
            feed.kill()
        server.shutdown()
        for svc in services:
            svc.stop()
    assert code == 0, err
    assert replayed == 5 * TRADES_PER_MESSAGE  # the re-sent trades, dropped as such
    assert len(server.subscribes) == 2  # subscribed again after the reconnect
    alerts = stream_alerts(redis_client, stream)
    assert len(alerts) == len(expected)
    assert len({a.alert_id for a in alerts}) == len(alerts)
    assert by_subject([a.signal.model_dump_json() for a in alerts]) == by_subject(expected)
