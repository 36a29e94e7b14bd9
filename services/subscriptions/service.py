"""The subscriptions' side of an alerter process, assembled.

The alerter hosts the subscriptions beside its Kafka loop. This module is what it starts
and stops of them, and, with handoff.py (the queue it hands alerts to), all it imports of
this package (tests/unit/test_import_graph.py):

- `adopt_legacy`: a registry written by an earlier version brought up to date, at start;
- `start_fanout`: the thread that reads the fan-out queue and fans each alert out;
- `start_background`: the HTTP API (if wanted), the webhook worker and the sweep that
  disarms expired subscriptions' price levels, on their own thread;
- `SubscriptionMetrics`: what they count, in the host's metrics registry.
"""

from __future__ import annotations

import redis

from services.runtime.settings import Settings
from services.subscriptions.background import Background
from services.subscriptions.fanout_worker import FanoutWorker
from services.subscriptions.handoff import FanoutQueue
from services.subscriptions.metrics import SubscriptionMetrics
from services.subscriptions.registry import SubscriptionRegistry

__all__ = ["SubscriptionMetrics", "SubscriptionService"]


class SubscriptionService:
    """The subscriptions of one namespace, as an alerter process runs them."""

    def __init__(self, settings: Settings, metrics: SubscriptionMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.queue = FanoutQueue.of(settings)

    def adopt_legacy(self, client: redis.Redis) -> int:
        """Subscriptions of an earlier version made current; how many. Idempotent."""
        return SubscriptionRegistry(client, self.settings).adopt_legacy()

    def start_fanout(self) -> FanoutWorker:
        """The reader of `queue`, running; `stop()` drains what is queued, then ends it."""
        return FanoutWorker(self.settings).start()

    def start_background(self, *, api: bool) -> Background:
        """The API (if `api`), the webhook worker and the levels sweep, running once this
        returns.

        Raises OSError when the API cannot listen (its port taken, say).
        """
        return Background(self.settings, self.metrics, api=api).start()
