"""Delivering alerts as the alerter does, with the fan-out stepped in the test's thread.

The shared delivery hands each new alert to the fan-out queue (`RedisDelivery(queue=...)`)
and a `FanoutWorker` drains the queue with `step()`, the very step its thread runs in the
alerter. `deliver` returns once the queue is empty, so a test reads the subscriptions'
streams and outboxes right after. If a worker of another process (an alerter running in
the namespace) holds the queue's lease, that worker drains the queue, and `deliver`
waits for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType

import redis

from schemas.alert import Alert
from services.alerter.delivery import RedisDelivery
from services.runtime.settings import Settings
from services.subscriptions.fanout import FanoutStats
from services.subscriptions.fanout_worker import FanoutWorker
from services.subscriptions.handoff import FanoutQueue
from tests.support.wait import wait_until


class FanoutDelivery:
    """One shared delivery and one fan-out worker; `close()` gives the worker's lease up."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout_s: float = 20.0,
    ) -> None:
        self.client = client
        self.queue = FanoutQueue.of(settings)
        self.shared = RedisDelivery(client, settings, queue=self.queue)
        self.worker = FanoutWorker(settings, now=now)
        self.timeout_s = timeout_s

    @property
    def stats(self) -> FanoutStats:
        """What this worker fanned out (none of another process's worker)."""
        return self.worker.stats

    def deliver(self, alerts: Sequence[Alert]) -> list[bool]:
        """The shared delivery's answer (new or not) per alert, once all are fanned out."""
        delivered = self.shared.deliver(alerts)
        wait_until(self._drained, self.timeout_s)
        return delivered

    def _drained(self) -> bool:
        if int(self.client.xlen(self.queue.key)) == 0:
            return True
        self.worker.step()
        return int(self.client.xlen(self.queue.key)) == 0

    def close(self) -> None:
        self.worker.stop()

    def __enter__(self) -> FanoutDelivery:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()


def deliver_and_fan_out(
    client: redis.Redis,
    settings: Settings,
    alerts: Sequence[Alert],
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[bool]:
    """`FanoutDelivery.deliver` once, with a worker of its own."""
    with FanoutDelivery(client, settings, now=now) as delivery:
        return delivery.deliver(alerts)
