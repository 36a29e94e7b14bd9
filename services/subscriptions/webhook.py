"""Webhook delivery: POST each alert of a subscription's outbox, signed, retried, off the hot path.

The fan-out script puts a webhook subscription's alerts in its Redis outbox stream
(`sub:{id}:outbox`) in the same atomic step as everything else, so an alert the alerter
has committed is never lost to a crash before the POST. Here, one asyncio task per
webhook subscription reads its outbox with a consumer group, POSTs each alert in order,
retries with exponential backoff, and XACKs (then XDELs) once the receiver answered 2xx
or every attempt failed (the alert then goes to `sub:{id}:webhook:failed` with the
reason). A slow or dead receiver holds up only its own subscription's task, never Kafka
consumption or other subscribers. A crash mid-POST leaves the entry pending; the next
worker claims it (XAUTOCLAIM after `webhook_claim_idle_ms`) and sends it again: webhooks
are at least once, and receivers de-duplicate with the `X-Marketsignal-Alert-Id` header.

Resilience: a Redis error on any step (reading, acknowledging, dead-lettering) is
logged and the step retried with backoff, never skipped: an entry is acknowledged only
once its outcome is recorded. A task that ends anyway (an unexpected exception) is
logged and restarted by the worker's supervision loop.

Destinations are checked at each attempt (services/subscriptions/destinations.py): literal
addresses here, names by the connector's resolver. Redirects are not followed: a 3xx is
a failed attempt.

Signing: services/subscriptions/signing.py. The outbox's stream steps (read, claim,
settle): services/subscriptions/webhook_outbox.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from schemas.subscription import Subscription
from services.runtime import redis_client
from services.runtime.outage import Outage
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.destinations import GuardedResolver, describe
from services.subscriptions.follower import RegistryFollower
from services.subscriptions.metrics import SubscriptionMetrics
from services.subscriptions.posting import Target, alert_id_of, post
from services.subscriptions.secrets import WebhookSecrets
from services.subscriptions.webhook_outbox import GROUP, Outbox

__all__ = ["GROUP", "WebhookStats", "WebhookWorker"]

log = logging.getLogger("marketsignal.webhook")

# How often the worker looks for new, changed or deleted webhook subscriptions.
REFRESH_S = 0.2
REDIS_BACKOFF_MAX_S = 5.0
T = TypeVar("T")


@dataclass
class WebhookStats:
    delivered: int = 0
    failures: int = 0  # failed attempts
    gave_up: int = 0  # alerts that failed every attempt
    redis_errors: int = 0  # Redis steps retried
    restarts: int = 0  # tasks that ended unexpectedly and were restarted
    per_sub: dict[str, int] = field(default_factory=dict)


class WebhookWorker:
    """Runs in an event loop (the alerter's background thread) until cancelled."""

    def __init__(
        self,
        settings: Settings,
        metrics: SubscriptionMetrics | None = None,
        *,
        consumer: str | None = None,
        redis_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.keys = RedisKeys(settings.namespace)
        self.metrics = metrics
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.outbox = Outbox(settings, self.keys, self.consumer)
        # The Redis the worker talks to (tests give a restricted user's URL).
        self.redis_url = redis_url or settings.redis_url
        self.secrets = WebhookSecrets.load(settings)
        self.allow = settings.webhook_allow_networks
        self.targets: dict[str, Target] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stats = WebhookStats()
        self._session: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        client = redis_client.connect_async(self.settings, self.redis_url)
        sync = redis_client.connect(self.settings, self.redis_url)
        follower = RegistryFollower(sync, self.keys)
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s)
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allow))
        try:
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
                self._session = session
                while True:
                    try:
                        await self._refresh(client, follower)
                    except RedisError as exc:
                        log.warning("webhook worker: Redis: %s", exc)
                    self._supervise(client)
                    await asyncio.sleep(REFRESH_S)
        finally:
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            await client.aclose()
            sync.close()

    async def _refresh(self, client: aioredis.Redis, follower: RegistryFollower) -> None:
        full, changed = await asyncio.to_thread(follower.poll)
        if full:
            for sub_id in list(self.tasks):
                if sub_id not in changed:
                    self._drop(sub_id)
        for sub_id, sub in changed.items():
            self._apply(client, sub_id, sub)

    def _apply(self, client: aioredis.Redis, sub_id: str, sub: Subscription | None) -> None:
        if sub is None or sub.delivery.webhook is None:
            self._drop(sub_id)
            return
        # A changed URL applies to the next attempt.
        self.targets[sub_id] = Target(sub.delivery.webhook.url, self.secrets.secret(sub_id))
        if sub_id not in self.tasks:
            self._start(client, sub_id)

    def _start(self, client: aioredis.Redis, sub_id: str) -> None:
        self.tasks[sub_id] = asyncio.create_task(
            self._serve(client, sub_id), name=f"webhook-{sub_id}"
        )

    def _drop(self, sub_id: str) -> None:
        task = self.tasks.pop(sub_id, None)
        if task is not None:
            task.cancel()
        self.targets.pop(sub_id, None)

    def _supervise(self, client: aioredis.Redis) -> None:
        """Restart, loudly, any task that ended: its webhooks must never stop silently."""
        for sub_id, task in list(self.tasks.items()):
            if not task.done():
                continue
            if task.cancelled():
                reason = "cancelled"
            else:
                exc = task.exception()
                reason = "returned" if exc is None else describe(exc)
            self.stats.restarts += 1
            log.error("webhook %s: delivery task ended (%s); restarting it", sub_id, reason)
            self._start(client, sub_id)

    async def _retry(self, what: str, sub_id: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run a Redis step until it succeeds, backing off; only cancellation stops it."""
        delay = 0.1
        outage = Outage(log, f"webhook {sub_id}: Redis on {what}")
        while True:
            try:
                result = await step()
                outage.ok()
                return result
            except RedisError as exc:
                self.stats.redis_errors += 1
                outage.failed(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, REDIS_BACKOFF_MAX_S)

    async def _serve(self, client: aioredis.Redis, sub_id: str) -> None:
        # First what this consumer read before and never settled (a task that ended, a
        # restart under the same name), then new entries.
        own_backlog = True
        while True:
            try:
                entries = await self.outbox.next(client, sub_id, own_backlog)
                own_backlog = own_backlog and bool(entries)
            except ResponseError as exc:
                if "NOGROUP" in str(exc) or "no such key" in str(exc).lower():
                    await self.outbox.create_group(client, sub_id)
                else:
                    self.stats.redis_errors += 1
                    log.warning("webhook %s: %s", sub_id, exc)
                await asyncio.sleep(REFRESH_S)
                continue
            except RedisError as exc:
                self.stats.redis_errors += 1
                log.warning("webhook %s: Redis: %s", sub_id, exc)
                await asyncio.sleep(1.0)
                continue
            for entry_id, fields in entries:
                body = fields.get(b"alert")
                failed = None if body is None else await self._post(client, sub_id, body)

                async def settle(
                    e: bytes = entry_id,
                    b: bytes | None = body,
                    f: tuple[str, int] | None = failed,
                ) -> None:
                    await self.outbox.settle(client, sub_id, e, b, f)

                await self._retry("acknowledge", sub_id, settle)

    async def _post(
        self, client: aioredis.Redis, sub_id: str, body: bytes
    ) -> tuple[str, int] | None:
        """None once delivered; else (the last reason, attempts) after every attempt failed."""
        s = self.settings
        delay = s.webhook_backoff_s
        alert_id = alert_id_of(body)
        error = "deleted"
        for attempt in range(1, s.webhook_max_attempts + 1):
            target = self.targets.get(sub_id)
            if target is None:
                return None  # deleted meanwhile: nobody to deliver to, nothing to keep
            error_or_none = await post(
                self._session, target, sub_id, alert_id, attempt, body, self.allow
            )
            if error_or_none is None:
                self.stats.delivered += 1
                self.stats.per_sub[sub_id] = self.stats.per_sub.get(sub_id, 0) + 1
                if self.metrics is not None:
                    self.metrics.webhook_delivered.inc()
                return None
            error = error_or_none
            self.stats.failures += 1
            if self.metrics is not None:
                self.metrics.webhook_failures.inc()
            failures_key = self.keys.webhook_failures(sub_id)

            async def count_failure(key: str = failures_key) -> None:
                await client.incr(key)

            await self._retry("count a failed attempt", sub_id, count_failure)
            log.warning(
                "webhook %s attempt %d/%d failed: %s",
                sub_id,
                attempt,
                s.webhook_max_attempts,
                error,
            )
            if attempt < s.webhook_max_attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.webhook_backoff_max_s)
        self.stats.gave_up += 1
        return error, s.webhook_max_attempts
