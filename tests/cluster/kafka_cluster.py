"""The 3-node Kafka cluster as the cluster fault suite drives it: deploy/local/cluster.sh for
kills, stops, wipes and starts, the admin API for who leads what and whether every replica
is back in sync, and the alert gap each fault is reported with.
"""

from __future__ import annotations

import itertools
import time
import urllib.error
import urllib.request

from kafka import KafkaAdminClient

from tests.faults.components import Fault
from tests.faults.ledger import Ledger
from tests.support.services import ROOT, run_script
from tests.support.wait import wait_for

CLUSTER = ROOT / "deploy" / "local" / "cluster.sh"
NODES = (1, 2, 3)


def cluster(*args: str) -> str:
    """`cluster.sh ARGS`, its output; fails the test with the output if it fails."""
    return run_script(CLUSTER, *args).strip()


def kill(node: int) -> float:
    """kill -9 of `node`; the epoch time it was dead (cluster.sh waits for the pid to go)."""
    cluster("kill", str(node))
    return time.time()


def stop(node: int) -> float:
    """SIGTERM (a controlled shutdown) of `node`; the epoch time it had exited."""
    cluster("down", str(node))
    return time.time()


def start(*nodes: int) -> float:
    """Start `nodes`; the epoch time each answered ApiVersions."""
    cluster("up", *map(str, nodes))
    return time.time()


def wipe(node: int) -> None:
    cluster("wipe", str(node))


def controller() -> int:
    """The active controller: the metadata quorum's leader (KRaft)."""
    return int(cluster("controller"))


def leader(admin: KafkaAdminClient, topic: str, partition: int) -> int:
    for t in admin.describe_topics([topic]):
        for p in t["partitions"]:
            if p["partition_index"] == partition:
                return int(p["leader_id"])
    raise AssertionError(f"{topic}[{partition}] not found")


def led_by(admin: KafkaAdminClient, node: int) -> list[str]:
    """Every partition of the cluster that `node` leads, as `topic[p]`."""
    return sorted(
        f"{t['name']}[{p['partition_index']}]"
        for t in admin.describe_topics()
        for p in t["partitions"]
        if p["leader_id"] == node
    )


def under_replicated(admin: KafkaAdminClient) -> list[str]:
    """Partitions whose in-sync replicas are fewer than their replicas."""
    return sorted(
        f"{t['name']}[{p['partition_index']}] isr {p['isr_nodes']} of {p['replica_nodes']}"
        for t in admin.describe_topics()
        for p in t["partitions"]
        if len(p["isr_nodes"]) < len(p["replica_nodes"])
    )


def wait_in_sync(admin: KafkaAdminClient, timeout_s: float = 120) -> float:
    """Until every partition of the cluster has all its replicas in sync; seconds waited."""
    started = time.monotonic()
    last: list[str] = []

    def in_sync() -> bool:
        nonlocal last
        try:
            last = under_replicated(admin)
        except Exception as exc:  # a broker still starting: not yet
            last = [f"describe failed: {exc}"]
            return False
        return not last

    wait_for(f"every replica in sync (last: {last[:5]})", in_sync, timeout_s, max_poll_s=0.5)
    return time.monotonic() - started


def alert_gap(pipe: Ledger, fault: Fault) -> tuple[float, float]:
    """(gap, recovery): from the last alert before the fault to the first new alert after
    it, and from the fault itself to that alert. "New": its signal was first produced
    after the fault (a replayed alert the subscriber already had does not count)."""
    recovery = pipe.recovery_s(fault)
    before = [t for t, _ in pipe.stream_entries(pipe.stream) if t <= fault.at]
    last = max(before) if before else fault.at
    return fault.at + recovery - last, recovery


def longest_pause(pipe: Ledger, fault: Fault, window_s: float = 30.0) -> float:
    """The longest time without any alert from the last alert before the fault to
    `window_s` after it: partitions the fault did not touch may keep the stream going
    (a gap of 0.0 s), while those it did stall; this is the stall the stream shows."""
    times = sorted(t for t, _ in pipe.stream_entries(pipe.stream))
    before = [t for t in times if t <= fault.at]
    start = before[-1] if before else fault.at
    inside = [start, *(t for t in times if start < t <= fault.at + window_s)]
    return max((b - a for a, b in itertools.pairwise(inside)), default=window_s)


def readyz(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace").strip()
