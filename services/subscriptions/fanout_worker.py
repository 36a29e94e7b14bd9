"""The fan-out queue's reader: a thread beside the Kafka loop, one active per namespace.

The queue: handoff.py. The script and what "fanned out" means: fanout.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from schemas.alert import Alert
from services.runtime import redis_client
from services.runtime.outage import Outage
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.fanout import FanoutStats, SubscriptionFanout
from services.subscriptions.handoff import FanoutQueue

log = logging.getLogger("marketsignal.fanout")

GROUP = "fanout"
READ_COUNT = 50
READ_BLOCK_MS = 200
MAX_BACKOFF_S = 5.0
FIELD = FanoutQueue.FIELD.encode()


# KEYS: lease.  ARGV: holder, ms.  1 if `holder` holds the lease (taken or renewed).
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
LEASE_MS = 10_000
# KEYS: lease.  ARGV: holder.  Let go of the lease if we hold it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class FanoutWorker:
    """Reads the fan-out queue and fans each alert out; a thread beside the Kafka loop.

    One worker of a namespace is active at a time (a lease in Redis, renewed at each
    step), so alerts of a subject reach each subscription in order even with several
    alerters; the others wait. A new holder first takes over every pending entry of the
    previous one. Any error is logged and retried with backoff: the thread ends only on
    `stop()`, after draining what is queued.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        consumer: str | None = None,
        lease_ms: int = LEASE_MS,
        clock: Callable[[], float] = time.time,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`now`: the wall clock subscriptions expire by; `clock`: the one latencies use."""
        self.settings = settings
        self.keys = RedisKeys(settings.namespace)
        self.queue = FanoutQueue.of(settings)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-fanout"
        self.lease_ms = lease_ms
        self.clock = clock
        self.client = redis_client.connect(settings)
        self.fanout = SubscriptionFanout(self.client, settings, now=now)
        self.errors = 0
        self.active = False
        self._lease = self.client.register_script(LEASE)
        self._release = self.client.register_script(RELEASE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fanout", daemon=True)

    @property
    def stats(self) -> FanoutStats:
        return self.fanout.stats

    def start(self) -> FanoutWorker:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Drain and end the thread, if started; give up the lease; close the connection."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=timeout_s)
        if not self._thread.is_alive():
            # Another alerter's worker takes over now rather than when the lease expires.
            with contextlib.suppress(redis.RedisError):
                self._release(keys=[self.keys.fanout_lease], args=[self.consumer])
            self.active = False
        self.client.close()

    def _run(self) -> None:
        backoff = 0.1
        outage = Outage(log, "fan-out: Redis")
        while True:
            try:
                handled = self.step()
                outage.ok()
                backoff = 0.1
                if self._stop.is_set() and (handled == 0 or not self.active):
                    return
                if not self.active:
                    self._stop.wait(self.lease_ms / 5000)
            except redis.RedisError as exc:
                self.errors += 1
                outage.failed(exc)
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except Exception:
                # Never die silently: a bad entry must not stop every subscriber's alerts.
                self.errors += 1
                log.exception("fan-out: unexpected error; retrying")
                if self._stop.wait(1.0):
                    return

    def step(self) -> int:
        """Fan out one batch of queued alerts; the number handled."""
        queue = self.queue.key
        held = int(self._lease(keys=[self.keys.fanout_lease], args=[self.consumer, self.lease_ms]))
        if not held:
            self.active = False
            return 0
        self.active = True
        try:
            # Pending first: a previous holder's, or ours that a Redis error left unacked.
            entries = self._claim(queue) or self._read(queue)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._create_group(queue)
            return 0
        if not entries:
            return 0
        alerts: list[Alert] = []
        for _entry_id, fields in entries:
            raw = fields.get(FIELD)
            if raw is not None:
                alerts.append(Alert.model_validate_json(raw))
        self.fanout.fan_out(alerts)
        now = self.clock()
        lat = self.fanout.stats.latencies
        lat.extend(now - a.emitted_at.timestamp() for a in alerts)
        del lat[:-10_000]
        ids = [entry_id for entry_id, _ in entries]
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(queue, GROUP, *ids)
        pipe.xdel(queue, *ids)
        pipe.execute()
        return len(entries)

    def _claim(self, queue: str) -> list[Any]:
        """Every pending entry (of a previous holder, or our own): ours now, oldest first."""
        claimed: Any = self.client.xautoclaim(
            queue, GROUP, self.consumer, min_idle_time=0, start_id="0-0", count=READ_COUNT
        )
        return list(claimed[1])

    def _read(self, queue: str) -> list[Any]:
        read: Any = self.client.xreadgroup(
            GROUP, self.consumer, {queue: ">"}, count=READ_COUNT, block=READ_BLOCK_MS
        )
        return [entry for _stream, items in read or () for entry in items]

    def _create_group(self, queue: str) -> None:
        # From 0: alerts queued before any worker ran are fanned out too.
        try:
            self.client.xgroup_create(queue, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
