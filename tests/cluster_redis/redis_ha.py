"""The local Redis HA (deploy/local/redis_ha.sh) as the failover tests drive it: which node
the sentinels name, a kill -9 of it, its return as a replica, and a subscriber reading the
alerts stream live through the sentinels.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from services.runtime import redis_client
from services.runtime.settings import Settings
from tests.support.services import ROOT, run_script

REDIS_HA = ROOT / "deploy" / "local" / "redis_ha.sh"


def ha(*args: str) -> str:
    """`redis_ha.sh ARGS` with this process's environment (ports, STACK_STATE)."""
    return run_script(REDIS_HA, *args)


def node_ports() -> list[int]:
    """Node 1's port and node 2's, as redis_ha.sh numbers them."""
    return [
        int(os.environ.get("REDIS_PORT", "6379")),
        int(os.environ.get("REDIS_HA_REPLICA_PORT", "6380")),
    ]


def primary(settings: Settings) -> tuple[str, int] | None:
    """The primary the first answering sentinel names, asked directly (no cache)."""
    password = redis_client.sentinel_password(settings)
    for host, port in settings.redis_sentinels:
        client = redis.Redis(host=host, port=port, password=password, socket_timeout=1)
        try:
            answer: Any = client.sentinel_get_master_addr_by_name(settings.redis_sentinel_master)
        except redis.RedisError:
            continue
        finally:
            client.close()
        if answer:
            return str(answer[0]), int(answer[1])
    return None


def primary_node(settings: Settings) -> int:
    """The number (1 or 2) of the node the sentinels name primary."""
    named = primary(settings)
    assert named is not None, "no sentinel names a primary"
    return node_ports().index(named[1]) + 1


def replicas_online(settings: Settings) -> int:
    """Replicas in sync with the primary, as the primary itself says."""
    client = redis_client.connect(settings, socket_timeout=1)
    try:
        info = client.info("replication")
    except redis.RedisError:
        return 0
    finally:
        client.close()
    return sum(
        1
        for k, v in info.items()
        if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
    )


@dataclass
class LiveReader:
    """A subscriber reading the `alerts` stream as it grows, through the sentinels.

    It follows a failover the way a subscriber would: on an error it reconnects (the
    client asks the sentinels again) and reads on from the last entry id it saw. What it
    read, and when, is what a subscriber could have read.
    """

    settings: Settings
    stream: str
    read: list[tuple[float, str]] = field(default_factory=list)  # (read at, alert_id)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> LiveReader:
        self._thread = threading.Thread(target=self._run, name="live-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        client = redis_client.connect(self.settings, socket_timeout=2)
        last = "0-0"
        try:
            while not self._stop.is_set():
                try:
                    got: Any = client.xread({self.stream: last}, count=500, block=200)
                except redis.RedisError:
                    self.errors += 1
                    self._stop.wait(0.1)
                    continue
                now = time.time()
                for _key, entries in got or ():
                    for entry_id, fields in entries:
                        last = entry_id.decode()
                        self.read.append((now, json.loads(fields[b"alert"])["alert_id"]))
        finally:
            client.close()

    def counts(self, expected: list[str]) -> tuple[int, int, int]:
        """(missing, extra, duplicates) of what was read against the expected alert ids."""
        want = Counter(expected)
        got = Counter(i for _, i in self.read)
        missing = sum((want - got).values())
        extra = sum(n for i, n in got.items() if i not in want)
        duplicates = sum(n - 1 for n in got.values() if n > 1)
        return missing, extra, duplicates
