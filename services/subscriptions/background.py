"""The alerter's asyncio side: the subscriptions API, the webhook worker, and the sweep
that disarms the levels of expired subscriptions.

The relay stays a synchronous kafka-python loop on the main thread; this runs beside it
on one thread with its own event loop, so neither an HTTP client nor a slow webhook
receiver can ever hold up Kafka consumption, and the relay never waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import redis
from aiohttp import web
from kafka.errors import KafkaError

from services.runtime import redis_client
from services.runtime.kafka_admin import BrokerUnavailableError
from services.runtime.settings import Settings
from services.subscriptions.api import build_app
from services.subscriptions.levels import LevelStore
from services.subscriptions.metrics import SubscriptionMetrics
from services.subscriptions.registry import SubscriptionRegistry
from services.subscriptions.webhook import WebhookWorker

log = logging.getLogger("marketsignal.alerter")
LOCAL_ONLY = "127.0.0.1"


def api_host(settings: Settings) -> str:
    """Without a token the API is unauthenticated, so it is reachable from this host only."""
    return settings.api_host if settings.api_auth else LOCAL_ONLY


class Background:
    """`start()` returns once the API listens (`port`) and the webhook worker runs."""

    def __init__(
        self,
        settings: Settings,
        metrics: SubscriptionMetrics | None = None,
        *,
        api: bool = True,
        webhooks: bool = True,
        port: int | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.api = api
        self.webhooks = webhooks
        self.port = settings.api_port if port is None else port
        self.worker = WebhookWorker(settings, metrics) if webhooks else None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="alerter-async", daemon=True)
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self) -> Background:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by start() when it happens before serving
            self._error = exc
            self._started.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        runner: web.AppRunner | None = None
        client: redis.Redis | None = None
        tasks: list[asyncio.Task[None]] = []
        levels: LevelStore | None = None
        try:
            client = redis_client.connect(self.settings)
            registry = SubscriptionRegistry(client, self.settings)
            levels = LevelStore(client, self.settings)
            tasks.append(asyncio.create_task(self._sweep(levels, registry), name="levels-sweep"))
            if self.api:
                runner = web.AppRunner(build_app(registry, self.settings, levels), access_log=None)
                await runner.setup()
                host = api_host(self.settings)
                site = web.TCPSite(runner, host, self.port)
                await site.start()
                server = site._server
                sockets = getattr(server, "sockets", None) or []
                if sockets:
                    self.port = int(sockets[0].getsockname()[1])
                if self.settings.api_auth:
                    log.info("subscriptions API on http://%s:%d (bearer tokens)", host, self.port)
                else:
                    log.warning(
                        "subscriptions API on http://%s:%d: no token configured "
                        "(MARKETSIGNAL_API_TOKENS), so it listens on 127.0.0.1 only, "
                        "without authentication",
                        host,
                        self.port,
                    )
            if self.worker is not None:
                tasks.append(asyncio.create_task(self.worker.run(), name="webhooks"))
            self._started.set()
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            if levels is not None:
                await asyncio.to_thread(levels.close)
            if client is not None:
                client.close()

    async def _sweep(self, levels: LevelStore, registry: SubscriptionRegistry) -> None:
        """Disarm the levels of expired (or deleted) subscriptions, every levels_sweep_s."""
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                done = await asyncio.to_thread(levels.sweep, registry.many)
                if done:
                    log.info("levels: disarmed %d of expired or deleted subscriptions", done)
            except (redis.RedisError, KafkaError, BrokerUnavailableError) as exc:
                log.warning("levels sweep: %s; trying again", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.levels_sweep_s)
