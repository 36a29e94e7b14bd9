"""Faults on the real stack: Kafka and Redis restarted mid-stream by stack.sh, held to the
backtest as every fault test is (see tests/faults/test_kills.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import redis

from tests.faults import log_lines
from tests.faults.components import Fault, may_restart, restart_component
from tests.faults.scenario import RATE, SEED, Report, check, fault_pipeline
from tests.support.stack import SettingsFactory

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


def _restart_test(
    component: str,
    settings: SettingsFactory,
    redis_client: redis.Redis,
    tmp_path: Path,
    report: Report,
) -> None:
    if not may_restart(component):
        pytest.skip(
            f"{component} was not started by this run's `make test` / `make test-faults` "
            "(FAULT_RESTARTS): restarting a server that may serve others is not ours to do"
        )
    # The restart comes 2-8 s after the first alert: a minute of feed leaves it well
    # inside the replay (checked below), with most of the replay after it.
    pipe = fault_pipeline(settings, redis_client, tmp_path, 60)
    rng = random.Random(SEED + 3)
    try:
        pipe.start_processor("worker-1")
        pipe.start_alerter()
        pipe.start_feed(RATE)
        pipe.wait_alerts(1)
        time.sleep(rng.uniform(2.0, 8.0))  # a random point of the replay
        assert pipe.feed_running(), "the feed ended before the fault: lengthen the workload"
        # The signals' ends before the stop: read after the restart instead, they raced
        # the catch-up (a broker back after 40 s had the rest of the feed's signals
        # appended before that read, and none counted as new).
        ends = pipe.signal_ends()
        before = log_lines.mark(tmp_path)
        stopped, ready = restart_component(component)
        report(f"{component} down at +0.0 s, ready again at +{ready - stopped:.1f} s")
        fault = Fault(f"{component} restart", ready, None, ends)
        check(pipe, report)
        # From the stop until everything was caught up again (check() settles first).
        written = log_lines.since(tmp_path, before)
    finally:
        pipe.stop_all()
    outage_s = ready - stopped
    for name, lines in written.items():
        common = log_lines.shapes(lines).most_common(3)
        report(f"{name}: {len(lines)} log records in the outage and the catch-up; most: {common}")
    # Our own loops log an outage's start, a summary every 30 s and its end
    # (services/runtime/outage.py); a client library's repeats are counted, its first line
    # of each message printed every 30 s (services/runtime/log_flood.py); a rebalance
    # after it logs a few more. Before, a record per retry: 4,277 from the processor in
    # a 21 s restart. Measured since: 23 (processor) and 21 (alerter) in a 45 s restart.
    limit = 40 + int(outage_s)
    flooded = {n: len(v) for n, v in written.items() if len(v) > limit}
    assert not flooded, f"more than {limit} log records in a {outage_s:.0f} s outage: {flooded}"
    after = pipe.recovery_s(fault)
    report(f"first new alert {after:.1f} s after {component} was ready again")


def test_broker_restart_mid_stream(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    _restart_test("kafka", settings, redis_client, tmp_path, report)


def test_redis_restart_mid_stream(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    _restart_test("redis", settings, redis_client, tmp_path, report)
