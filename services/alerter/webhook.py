"""Webhook delivery: POST each alert of a subscription's outbox, signed, retried, off the hot path.

The delivery script puts a webhook subscription's alerts in its Redis outbox stream
(`sub:{id}:outbox`) in the same atomic step as everything else, so an alert the alerter
has committed is never lost to a crash before the POST. Here, one asyncio task per
webhook subscription reads its outbox with a consumer group, POSTs each alert in order,
retries with exponential backoff, and XACKs (then XDELs) once the receiver answered 2xx
or every attempt failed (the alert then goes to `sub:{id}:webhook:failed`). A slow or
dead receiver holds up only its own subscription's task, never Kafka consumption or
other subscribers. A crash mid-POST leaves the entry pending; the next worker claims it
(XAUTOCLAIM) and sends it again: webhooks are at least once, and receivers de-duplicate
with the `X-Marketsignal-Alert-Id` header.

Signature: `X-Marketsignal-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with
the subscription's secret>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from schemas.subscription import Subscription
from services.alerter.metrics import AlertMetrics
from services.alerter.subscriptions import SubscriptionKeys
from services.settings import Settings

log = logging.getLogger("marketsignal.webhook")

SIGNATURE_HEADER = "X-Marketsignal-Signature"
GROUP = "webhook"
# A pending entry idle this long belongs to a worker that died: another one takes it.
CLAIM_IDLE_MS = 60_000
READ_BLOCK_MS = 500
# How often the worker looks for new, changed or deleted webhook subscriptions.
REFRESH_S = 0.2


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header)


@dataclass
class Target:
    url: str
    secret: str


@dataclass
class WebhookStats:
    delivered: int = 0
    failures: int = 0  # failed attempts
    gave_up: int = 0  # alerts that failed every attempt
    per_sub: dict[str, int] = field(default_factory=dict)


class WebhookWorker:
    """Runs in an event loop (the alerter's background thread) until cancelled."""

    def __init__(self, settings: Settings, metrics: AlertMetrics | None = None) -> None:
        self.settings = settings
        self.keys = SubscriptionKeys(settings)
        self.metrics = metrics
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.targets: dict[str, Target] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stats = WebhookStats()
        self._version: int | None = None
        self._session: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        client = aioredis.Redis.from_url(self.settings.redis_url)
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                self._session = session
                while True:
                    try:
                        await self._refresh(client)
                    except RedisError as exc:
                        log.warning("webhook worker: Redis: %s", exc)
                    await asyncio.sleep(REFRESH_S)
        finally:
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            await client.aclose()

    async def _refresh(self, client: aioredis.Redis) -> None:
        raw: Any = await client.get(self.keys.version)
        version = 0 if raw is None else int(raw)
        if version == self._version:
            return
        subs: Any = await client.hgetall(self.keys.subs)
        secrets: Any = await client.hgetall(self.keys.secrets)
        wanted: dict[str, Target] = {}
        for value in subs.values():
            sub = Subscription.model_validate_json(value)
            secret = secrets.get(sub.id.encode())
            if sub.delivery.webhook is not None and secret is not None:
                wanted[sub.id] = Target(sub.delivery.webhook.url, secret.decode())
        for sub_id in list(self.tasks):
            if sub_id not in wanted:
                self.tasks.pop(sub_id).cancel()
                self.targets.pop(sub_id, None)
        for sub_id, target in wanted.items():
            self.targets[sub_id] = target  # a changed URL applies to the next POST
            if sub_id not in self.tasks:
                self.tasks[sub_id] = asyncio.create_task(
                    self._serve(client, sub_id), name=f"webhook-{sub_id}"
                )
        self._version = version

    async def _serve(self, client: aioredis.Redis, sub_id: str) -> None:
        outbox = self.keys.outbox(sub_id)
        while True:
            try:
                entries = await self._next(client, outbox)
            except ResponseError as exc:
                if "NOGROUP" in str(exc) or "no such key" in str(exc).lower():
                    await self._create_group(client, outbox)
                else:
                    log.warning("webhook %s: %s", sub_id, exc)
                await asyncio.sleep(REFRESH_S)
                continue
            except RedisError as exc:
                log.warning("webhook %s: Redis: %s", sub_id, exc)
                await asyncio.sleep(1.0)
                continue
            for entry_id, fields in entries:
                body = fields.get(b"alert")
                if body is not None:
                    await self._post(client, sub_id, body)
                await client.xack(outbox, GROUP, entry_id)
                await client.xdel(outbox, entry_id)

    async def _create_group(self, client: aioredis.Redis, outbox: str) -> None:
        # No MKSTREAM: the outbox of a deleted subscription must not come back to life.
        # The group starts at 0, so entries queued before the worker saw them are sent.
        with contextlib.suppress(ResponseError):
            await client.xgroup_create(outbox, GROUP, id="0")

    async def _next(self, client: aioredis.Redis, outbox: str) -> list[Any]:
        claimed: Any = await client.xautoclaim(
            outbox, GROUP, self.consumer, min_idle_time=CLAIM_IDLE_MS, start_id="0-0", count=10
        )
        if claimed[1]:
            return list(claimed[1])
        read: Any = await client.xreadgroup(
            GROUP, self.consumer, {outbox: ">"}, count=10, block=READ_BLOCK_MS
        )
        return [entry for _stream, entries in read or () for entry in entries]

    async def _post(self, client: aioredis.Redis, sub_id: str, body: bytes) -> None:
        s = self.settings
        delay = s.webhook_backoff_s
        alert_id = _alert_id(body)
        for attempt in range(1, s.webhook_max_attempts + 1):
            target = self.targets.get(sub_id)
            if target is None:
                return  # deleted meanwhile
            error = await self._attempt(target, sub_id, alert_id, attempt, body)
            if error is None:
                self.stats.delivered += 1
                self.stats.per_sub[sub_id] = self.stats.per_sub.get(sub_id, 0) + 1
                if self.metrics is not None:
                    self.metrics.delivered.labels("webhook").inc()
                return
            self.stats.failures += 1
            if self.metrics is not None:
                self.metrics.webhook_failures.inc()
            with contextlib.suppress(RedisError):
                await client.incr(self.keys.webhook_failures(sub_id))
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
        await client.xadd(
            self.keys.webhook_dead(sub_id),
            {"alert": body},
            maxlen=s.sub_stream_maxlen,
            approximate=True,
        )

    async def _attempt(
        self, target: Target, sub_id: str, alert_id: str, attempt: int, body: bytes
    ) -> str | None:
        """None on a 2xx answer, else what went wrong."""
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(target.secret, body),
            "X-Marketsignal-Subscription": sub_id,
            "X-Marketsignal-Alert-Id": alert_id,
            "X-Marketsignal-Attempt": str(attempt),
        }
        session = self._session
        assert session is not None, "run() opens the session"
        try:
            async with session.post(target.url, data=body, headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return None
                return f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"


def _alert_id(body: bytes) -> str:
    marker = b'"alert_id":"'
    start = body.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    return body[start : body.find(b'"', start)].decode(errors="replace")
