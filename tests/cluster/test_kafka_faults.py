"""Faults of a 3-node Kafka cluster (replication factor 3, min.insync.replicas=2, unclean
leader election off) under a paced feed, held to the backtest as every fault test is
(tests/faults): the Redis stream and a catch-all subscription's stream hold exactly the
backtest's alerts, 0 missing, 0 extra, 0 duplicates, each subject's in order.

Each test reports the alert gap: from the last alert before the fault to the first alert
after it whose signal was first produced after it (tests/cluster/kafka_cluster.py). The
target is 10 s; the assertion is RECOVERY_LIMIT_S (20 s), as in tests/faults, because on
a loaded 2-core machine with three brokers on it a JVM or a Python process alone can take
seconds. `make test-cluster` runs the suite on a fresh cluster (deploy/local/cluster.sh).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import redis

from services.processor.faust_compat.changelog import changelog_topic_name
from services.processor.tables import STATE_TABLES
from services.runtime.settings import Settings
from tests.cluster import kafka_cluster as kc
from tests.faults.components import Fault
from tests.faults.harness import Pipeline
from tests.faults.scenario import (
    RATE,
    RECOVERY_LIMIT_S,
    RECOVERY_TARGET_S,
    SEED,
    Report,
    fault_pipeline,
)
from tests.faults.scenario import check as check_exact
from tests.support.services import free_port
from tests.support.stack import SettingsFactory
from tests.support.wait import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.e2e, pytest.mark.faults]

# The outage of the two-nodes-down fault (issue 24: 30 s).
TWO_DOWN_S = 30.0
# From the command that starts the two nodes again to the first new alert. It includes the
# nodes' own start after a kill -9 (log recovery, quorum, catching up): 22-31 s for two
# JVMs at once on the 2-core machine, before any client can write.
TWO_DOWN_RESUME_LIMIT_S = 45.0


@pytest.fixture(autouse=True)
def whole_cluster(stack: Settings) -> Iterator[None]:
    """Every node up and every replica in sync before and after each test: a fault test
    starts from a healthy cluster whatever the one before it left."""
    need = (
        "the cluster suite runs with MARKETSIGNAL_REPLICATION_FACTOR=3 and "
        "MARKETSIGNAL_MIN_INSYNC_REPLICAS=2 against deploy/local/cluster.sh: `make test-cluster`"
    )
    assert stack.replication_factor == 3, need
    assert stack.min_insync_replicas == 2, need
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        kc.start(*kc.NODES)
        kc.wait_in_sync(admin)
        yield
        kc.start(*kc.NODES)
        kc.wait_in_sync(admin)
    finally:
        admin.close()


def running(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, seconds: float
) -> Pipeline:
    """A pipeline (one processor, the alerter, the feed at RATE) with alerts flowing."""
    pipe = fault_pipeline(settings, redis_client, tmp_path, seconds)
    # A known port for the ingestor's /readyz (the tests' default, 0, is never logged).
    pipe.env["MARKETSIGNAL_INGESTOR_METRICS_PORT"] = str(free_port())
    pipe.env["MARKETSIGNAL_PROCESSOR_METRICS_PORT"] = str(free_port())
    pipe.start_processor("worker-1")
    pipe.start_alerter()
    pipe.start_feed(RATE)
    pipe.wait_alerts(1)
    return pipe


def strike(pipe: Pipeline, what: str, act: Callable[[], float]) -> Fault:
    """`act` (a kill or a stop) as a fault: the signals' ends read before it."""
    assert pipe.feed_running(), "the feed ended before the fault: lengthen the workload"
    ends = pipe.signal_ends()
    fault = Fault(what, act(), None, ends)
    pipe.faults.append(fault)
    return fault


def gaps(pipe: Pipeline, faults: list[Fault], report: Report) -> list[float]:
    out = []
    for fault in faults:
        gap, recovery = kc.alert_gap(pipe, fault)
        pause = kc.longest_pause(pipe, fault)
        out.append(max(gap, pause))
        report(
            f"{fault.what}: alert gap {gap:.1f} s (last alert before -> first new after; "
            f"first new alert {recovery:.1f} s after the fault), longest pause between two "
            f"alerts in the 30 s after it {pause:.1f} s; target {RECOVERY_TARGET_S:g} s"
        )
    return out


def _kill_leader_of(
    topic_of: Callable[[Settings], str],
    kind: str,
    settings: SettingsFactory,
    redis_client: redis.Redis,
    tmp_path: Path,
    report: Report,
    seed: int,
) -> None:
    rng = random.Random(SEED + seed)
    pipe = running(settings, redis_client, tmp_path, 75)
    try:
        time.sleep(rng.uniform(2.0, 6.0))  # a random point of the replay
        topic = topic_of(pipe.s)
        partition = rng.randrange(pipe.s.partitions)
        node = kc.leader(pipe.admin, topic, partition)
        led = kc.led_by(pipe.admin, node)
        fault = strike(
            pipe, f"kill -9 of node {node}, leader of {kind}[{partition}]", lambda: kc.kill(node)
        )
        report(f"node {node} led {len(led)} partitions when killed")
        pipe.wait_new_signals(fault)
        back = kc.start(node)  # as a supervisor would, once the failover has happened
        report(f"node {node} restarted, answering {back - fault.at:.1f} s after the kill")
        check_exact(pipe, report)
    finally:
        pipe.stop_all()
    assert max(gaps(pipe, [fault], report)) <= RECOVERY_LIMIT_S


def test_kill_leader_of_ticks_partition(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    _kill_leader_of(lambda s: s.ticks_topic, "ticks", settings, redis_client, tmp_path, report, 11)


def test_kill_leader_of_signals_partition(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    _kill_leader_of(
        lambda s: s.signals_topic, "signals", settings, redis_client, tmp_path, report, 12
    )


def test_kill_leader_of_changelog_partition(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    def changelog(s: Settings) -> str:
        return changelog_topic_name(s.processor_consumer_group, STATE_TABLES[0])

    _kill_leader_of(changelog, "changelog", settings, redis_client, tmp_path, report, 13)


def test_kill_active_controller(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    rng = random.Random(SEED + 14)
    pipe = running(settings, redis_client, tmp_path, 75)
    try:
        time.sleep(rng.uniform(2.0, 6.0))
        node = kc.controller()
        # Combined mode: the controller is also a broker leading partitions of its own.
        led = kc.led_by(pipe.admin, node)
        fault = strike(
            pipe, f"kill -9 of node {node}, the active controller", lambda: kc.kill(node)
        )
        pipe.wait_new_signals(fault)
        elected = wait_for("a new active controller", _other_controller(node), 30, max_poll_s=0.5)
        report(
            f"node {node} (controller, leading {len(led)} partitions) killed; "
            f"node {elected} is the active controller now"
        )
        kc.start(node)
        check_exact(pipe, report)
    finally:
        pipe.stop_all()
    assert max(gaps(pipe, [fault], report)) <= RECOVERY_LIMIT_S


def _other_controller(dead: int) -> Callable[[], int | None]:
    def probe() -> int | None:
        try:
            now = kc.controller()
        except AssertionError:
            return None  # no quorum leader yet
        return now if now != dead else None

    return probe


def test_rolling_restart_under_load(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    """Each node stopped (SIGTERM: a controlled shutdown, as an upgrade does), started, and
    every replica back in sync before the next one, as a rolling restart is done."""
    pipe = running(settings, redis_client, tmp_path, 110)
    faults = []
    try:
        for node in kc.NODES:
            time.sleep(2.0)
            fault = strike(pipe, f"rolling restart: node {node} stopped", partial(kc.stop, node))
            faults.append(fault)
            back = kc.start(node)
            synced = kc.wait_in_sync(pipe.admin)
            report(
                f"node {node}: answering {back - fault.at:.1f} s after its stop, every "
                f"replica in sync {synced:.1f} s later"
            )
        check_exact(pipe, report)
    finally:
        pipe.stop_all()
    assert max(gaps(pipe, faults, report)) <= RECOVERY_LIMIT_S


def test_two_nodes_down_then_back(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    """Two of three nodes killed for TWO_DOWN_S: fewer in-sync replicas than
    min.insync.replicas everywhere, and (combined mode) no controller quorum either, so
    nothing can be written. The ingestor must hold its ticks (buffered, in order) and say
    so (/readyz, the log, a metric); when the nodes are back every tick gets through once."""
    rng = random.Random(SEED + 16)
    pipe = running(settings, redis_client, tmp_path, 60 + TWO_DOWN_S)
    try:
        time.sleep(rng.uniform(2.0, 6.0))
        survivor = rng.choice(kc.NODES)
        down = [n for n in kc.NODES if n != survivor]
        urls = {
            svc: f"http://127.0.0.1:{pipe.env[f'MARKETSIGNAL_{svc.upper()}_METRICS_PORT']}/readyz"
            for svc in ("ingestor", "processor")
        }
        for svc, url in urls.items():
            status, body = kc.readyz(url)
            report(f"{svc} /readyz before the fault: {status} {body}")

        def both() -> float:
            for n in down:
                kc.kill(n)
            return time.time()

        fault = strike(pipe, f"nodes {down[0]} and {down[1]} killed for {TWO_DOWN_S:g} s", both)
        seen: dict[str, tuple[int, str]] = {}
        while time.time() < fault.at + TWO_DOWN_S:
            for svc, url in urls.items():
                status, body = kc.readyz(url)
                if status != 200 and svc not in seen:
                    seen[svc] = (status, body)
                    report(f"{svc} /readyz {status} {time.time() - fault.at:.1f} s in: {body}")
            time.sleep(0.5)
        restarted = time.time()
        back = kc.start(*down)
        report(
            f"nodes {down} started {restarted - fault.at:.1f} s after the kill, both "
            f"answering ApiVersions {back - restarted:.1f} s later (two JVMs recovering "
            "unflushed logs at once)"
        )
        assert set(seen) == set(urls), f"/readyz said the cluster takes no writes: {seen}"
        log = (pipe.logs / "ingest.log").read_text(errors="replace")
        warned = [line for line in log.splitlines() if "Kafka writes unavailable" in line]
        report(f"ingestor log: {len(warned)} line(s) on the outage: {warned[:1]}")
        assert len(warned) == 1, warned
        check_exact(pipe, report)
        log = (pipe.logs / "ingest.log").read_text(errors="replace")
        report(
            "ingestor log on the way back: "
            f"{[line for line in log.splitlines() if 'Kafka writes back' in line][:1]}"
        )
    finally:
        pipe.stop_all()
    gap, recovery = kc.alert_gap(pipe, fault)
    resumed = fault.at + recovery - restarted
    report(
        f"alert gap {gap:.1f} s over a {TWO_DOWN_S:g} s outage: the first new alert "
        f"{resumed:.1f} s after the nodes were started again"
    )
    assert resumed <= TWO_DOWN_RESUME_LIMIT_S, resumed


def test_wiped_node_rejoins_empty_and_re_replicates(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    """A node killed, its data and metadata deleted (a lost disk), started again: it is
    formatted empty with its old id, fetches every replica it hosts from the leaders and
    rejoins every ISR. Then the other two nodes are killed one after the other, so the
    wiped node's copy is the one that has to serve: nothing may be missing from it."""
    rng = random.Random(SEED + 17)
    pipe = running(settings, redis_client, tmp_path, 110)
    faults = []
    try:
        time.sleep(rng.uniform(2.0, 6.0))
        node = rng.choice(kc.NODES)
        fault = strike(pipe, f"node {node} killed and wiped", lambda: kc.kill(node))
        faults.append(fault)
        kc.wipe(node)
        kc.start(node)
        synced = kc.wait_in_sync(pipe.admin)
        report(
            f"node {node} wiped, restarted empty, every replica in sync again "
            f"{time.time() - fault.at:.1f} s after the kill ({synced:.1f} s after its start)"
        )
        pipe.wait_new_signals(fault)
        # The wiped node must now hold everything: each other node in turn goes away, so
        # partitions it led move to the wiped node or its one remaining peer.
        for other in [n for n in kc.NODES if n != node]:
            second = strike(pipe, f"node {other} killed after the wipe", partial(kc.kill, other))
            faults.append(second)
            pipe.wait_new_signals(second)
            kc.start(other)
            kc.wait_in_sync(pipe.admin)
        check_exact(pipe, report)
    finally:
        pipe.stop_all()
    assert max(gaps(pipe, faults, report)) <= RECOVERY_LIMIT_S
