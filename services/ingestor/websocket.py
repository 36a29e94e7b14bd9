"""`ingest --ws URL`: ticks from a WebSocket feed, with reconnects and back-pressure.

The protocol is the `websockets` library's: it answers the server's pings, sends its own
every `ping_interval` and drops a connection whose pong is later than `ping_timeout`
(heartbeats). On any drop or failed connect the client waits an exponential backoff
with jitter (`initial * 2**attempt`, capped, times a random factor in [0.5, 1]) and
connects again, running the same start on each connection: a built-in adapter's login
and subscription (its `Handshake`: auth, wait for the answer within `login_timeout_s`,
subscribe), then the `--subscribe` message, if any. Only then are messages data. A login
refused for good (a wrong key) raises `LoginRefusedError` out of `run`: retrying would
not fix it; a login refused for now, or unanswered, is retried like a drop.

Messages: a JSON object is a tick, a JSON array a list of ticks; an `adapter` (a
built-in one by name, docs/feeds.md, or `module:function`, docs/ingest-and-alerts.md)
maps any other shape to ticks (services/ingestor/adapters/base.py: the items it may
return). Ticks go through the same `Screener` and dead-letter path as file lines; `line`
in a dead letter is the message's number since the ingestor started.

Back-pressure: after each message the reader waits while more than `max_in_flight`
records are unacknowledged by Kafka. While it waits nothing is read: the library's
queue (`max_queue` messages) fills, then the socket's buffers, and TCP slows the server.
Nothing is buffered without bound.

Across a reconnect, a server that re-sends what it sent before the drop (the usual way
to not lose anything) would have it published twice. So after each reconnect the client
remembers the identity (the exact fields) of the last ticks it handled per symbol, and
drops re-sent ones until each symbol sends something new (`marketsignal_ingest_ws_replayed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from services.ingestor.adapters import built_in
from services.ingestor.adapters.base import (
    Adapter,
    Handshake,
    LoginFailedError,
    LoginRefusedError,
    Mapped,
    Outcome,
    Rejected,
)
from services.ingestor.backoff import backoff_delay
from services.ingestor.extras import load_function
from services.ingestor.ingest import IngestSummary, Sink, deliver, handle_record
from services.ingestor.metrics import IngestMetrics
from services.ingestor.pacing import Pacer
from services.ingestor.screening import Screener
from services.ingestor.source_metrics import SourceMetrics
from services.ingestor.symbols import SymbolMap
from services.parsing.feed import RawRecord

log = logging.getLogger("marketsignal.ingestor.ws")

_HEARTBEAT_TYPES = frozenset(("heartbeat", "ping", "pong", "subscribed", "hello", "info"))
# Identities remembered per symbol for recognising a re-sent message after a reconnect.
_REMEMBERED_PER_SYMBOL = 512
# The replay filter's key for rejected elements, which have no usable symbol: no symbol
# matches it (it is not a valid one).
_REJECTED_KEY = " rejected"
# How much of a message read while logging in a log line quotes.
_QUOTED_MAX = 200


def default_adapter(message: Any) -> Iterable[Mapping[str, Any]]:
    """An object is one tick, an array a list of them; an object without `symbol` whose
    `type` is heartbeat-like (heartbeat, ping, pong, subscribed, hello, info) is skipped."""
    if isinstance(message, list):
        return message
    if (
        isinstance(message, dict)
        and "symbol" not in message
        and message.get("type") in _HEARTBEAT_TYPES
    ):
        return ()
    return (message,)


def load_adapter(spec: str, symbols: SymbolMap | None = None) -> Adapter:
    """A built-in adapter's name (docs/feeds.md; its symbols mapped by `symbols`) or
    `package.module:function` (docs/ingest-and-alerts.md, "Adapters") -> the adapter."""
    if ":" not in spec:
        return built_in(spec, symbols)
    return load_function(spec, f"adapter {spec!r}")


@dataclass(frozen=True)
class WsOptions:
    """One feed: where, what to send on each connect, how to map its messages, and the
    heartbeat, backoff and back-pressure bounds described above (seconds, records)."""

    url: str
    subscribe: str | None = None
    adapter: Adapter = default_adapter
    handshake: Handshake | None = None
    login_timeout_s: float = 10.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    open_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_in_flight: int = 10_000
    max_queue: int = 64


class ReplayFilter:
    """Drops messages a server re-sends after a reconnect, until each symbol moves on."""

    def __init__(self, per_symbol: int = _REMEMBERED_PER_SYMBOL) -> None:
        self.per_symbol = per_symbol
        self.recent: dict[str, OrderedDict[bytes, None]] = {}
        self.resyncing: set[str] = set()

    def reconnected(self) -> None:
        self.resyncing = set(self.recent)

    def seen_before(self, fields: Mapping[str, Any]) -> bool:
        """True for a re-sent tick (to drop); remembers the others."""
        symbol = str(fields.get("symbol"))
        identity = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        recent = self.recent.get(symbol)
        if recent is None:
            recent = self.recent[symbol] = OrderedDict()
        if symbol in self.resyncing:
            if identity in recent:
                return True
            self.resyncing.discard(symbol)  # something new: the replay is over for it
        recent[identity] = None
        if len(recent) > self.per_symbol:
            recent.popitem(last=False)
        return False


class WsSource:
    """Reads the feed into the screener and sink until `stop()`."""

    def __init__(
        self,
        options: WsOptions,
        screener: Screener,
        sink: Sink,
        in_flight: Callable[[], int],
        metrics: IngestMetrics | None = None,
        *,
        rng: random.Random | None = None,
        source_metrics: SourceMetrics | None = None,
    ) -> None:
        self.options = options
        self.screener = screener
        self.sink = sink
        self.in_flight = in_flight
        self.metrics = metrics
        self.source_metrics = source_metrics
        self.rng = rng or random.Random()
        self.summary = IngestSummary()
        self.pacer = Pacer()
        self.replays = ReplayFilter()
        self.messages = 0
        self.connections = 0
        self._stop = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._closing: asyncio.Future[None] | None = None

    def stop(self) -> None:
        """Finish the message in hand, close the connection, return from `run`."""
        self._stop.set()
        if self._ws is not None:
            self._closing = asyncio.ensure_future(self._ws.close())

    async def run(self) -> IngestSummary:
        attempt = 0
        opts = self.options
        while not self._stop.is_set():
            try:
                async with connect(
                    opts.url,
                    ping_interval=opts.ping_interval_s,
                    ping_timeout=opts.ping_timeout_s,
                    open_timeout=opts.open_timeout_s,
                    # A peer that missed its pong won't answer a close frame either: give it
                    # the ping timeout, not the library's 10 s, before the socket is dropped.
                    close_timeout=opts.ping_timeout_s,
                    max_queue=opts.max_queue,
                ) as ws:
                    self._ws = ws
                    log.info("connected to %s", opts.url)
                    await self._start(ws)
                    # Only now: a server that accepts connections but refuses every login
                    # for now must meet a growing backoff, not the first step again.
                    attempt = 0
                    self.connections += 1
                    if self.connections > 1:
                        self.replays.reconnected()
                    if self.metrics is not None:
                        self.metrics.ws_connected.set(1)
                    if self.source_metrics is not None:
                        self.source_metrics.connected()
                    async with self._resubscribing(ws):
                        async for message in ws:
                            self.handle_message(message)
                            await self._drain()
                            if self._stop.is_set():
                                break
            except (
                OSError,
                TimeoutError,
                LoginFailedError,
                websockets.exceptions.WebSocketException,
            ) as exc:
                log.warning("feed %s: %s", opts.url, exc or type(exc).__name__)
            finally:
                self._ws = None
                if self.metrics is not None:
                    self.metrics.ws_connected.set(0)
                if self.source_metrics is not None:
                    self.source_metrics.disconnected()
            if self._stop.is_set():
                break
            delay = backoff_delay(attempt, opts.backoff_initial_s, opts.backoff_max_s, self.rng)
            attempt += 1
            if self.metrics is not None:
                self.metrics.ws_reconnects.inc()
            if self.source_metrics is not None:
                self.source_metrics.reconnecting()
            log.warning("reconnecting to %s in %.2fs (attempt %d)", opts.url, delay, attempt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        return self.summary

    async def _start(self, ws: ClientConnection) -> None:
        """Log in and subscribe (the handshake), then send the --subscribe message."""
        handshake = self.options.handshake
        if handshake is not None:
            if handshake.auth is not None:
                await ws.send(handshake.auth)
                await self._login_reply(ws, handshake)
            for message in handshake.subscribe:
                await ws.send(message)
        if self.options.subscribe is not None:
            await ws.send(self.options.subscribe)

    @contextlib.asynccontextmanager
    async def _resubscribing(self, ws: ClientConnection) -> AsyncIterator[None]:
        """While the body runs, send the handshake's subscription again every
        `resubscribe_every_s` (a feed that forgets subscriptions: Yahoo's streamer)."""
        handshake = self.options.handshake
        every = handshake.resubscribe_every_s if handshake is not None else None
        if handshake is None or every is None or not handshake.subscribe:
            yield
            return

        async def resubscribe() -> None:
            while True:
                await asyncio.sleep(every)
                for message in handshake.subscribe:
                    await ws.send(message)

        task = asyncio.create_task(resubscribe())
        try:
            yield
        finally:
            task.cancel()
            # Its end is the connection's: a send on a closed connection is no news.
            with contextlib.suppress(
                asyncio.CancelledError, websockets.exceptions.WebSocketException
            ):
                await task

    async def _login_reply(self, ws: ClientConnection, handshake: Handshake) -> None:
        """Read until the login's answer, within the login timeout. What comes before it
        (the welcome message) is no data: the feed sends data only once subscribed."""
        timeout_s = self.options.login_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                while not self._logged_in(await ws.recv(), handshake):
                    pass
        except TimeoutError:
            raise TimeoutError(
                f"{handshake.vendor} did not answer the login within {timeout_s:g}s"
            ) from None

    def _logged_in(self, message: str | bytes, handshake: Handshake) -> bool:
        """Whether `message` says the login succeeded; raises if it says it failed."""
        text = message.decode("utf-8", errors="replace") if isinstance(message, bytes) else message
        try:
            reply = handshake.classify(orjson.loads(text))
        except orjson.JSONDecodeError:
            log.warning("logging in: not JSON, ignored: %r", text[:_QUOTED_MAX])
            return False
        if reply.outcome is Outcome.DONE:
            log.info("logged in to %s (%s)", handshake.vendor, reply.detail)
            return True
        if reply.outcome is Outcome.REFUSED:
            fix = f": check {handshake.credentials}" if handshake.credentials else ""
            raise LoginRefusedError(f"{handshake.vendor} refused the login ({reply.detail}){fix}")
        if reply.outcome is Outcome.RETRY:
            raise LoginFailedError(f"{handshake.vendor} refused the login for now ({reply.detail})")
        log.info("logging in to %s: %s", handshake.vendor, text[:_QUOTED_MAX])
        return False

    async def _drain(self) -> None:
        """Back-pressure: read nothing more while Kafka has too much unacknowledged."""
        limit = self.options.max_in_flight
        if self.metrics is not None:
            self.metrics.in_flight.set(self.in_flight())
        while self.in_flight() > limit and not self._stop.is_set():
            await asyncio.sleep(0.005)

    def handle_message(self, message: str | bytes) -> None:
        """One message: decoded, through the adapter, each item screened into the sink."""
        self.messages += 1
        if self.source_metrics is not None:
            self.source_metrics.message()
        text = message.decode("utf-8", errors="replace") if isinstance(message, bytes) else message
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self._record(RawRecord(self.messages, text, None, f"not valid JSON: {exc}"))
            return
        try:
            ticks = list(self.options.adapter(parsed))
        except Exception as exc:  # a user's adapter: any failure is this message's fault
            self._record(RawRecord(self.messages, text, None, f"adapter failed: {exc!r}"))
            return
        alone = len(ticks) == 1
        for item in ticks:
            if isinstance(item, Rejected):
                # A server re-sending after a reconnect re-sends its bad elements too:
                # dead-lettered once, as a re-sent bad tick is.
                if not self._replayed({"symbol": _REJECTED_KEY, "source": item.source}):
                    self._reject(item, text if alone else _json(item.source))
                continue
            source: Any = None
            fields: Mapping[str, Any]
            if isinstance(item, Mapped):
                fields, source = item.fields, item.source
            elif isinstance(item, Mapping):
                fields = item
            else:
                self._record(RawRecord(self.messages, text, None, "a tick must be an object"))
                continue
            if self._replayed(fields):
                continue
            # A dead letter quotes what the source sent: the message, or its element.
            raw = text if alone else _json(dict(fields) if source is None else source)
            self._record(RawRecord(self.messages, raw, dict(fields)))

    def _replayed(self, fields: Mapping[str, Any]) -> bool:
        if not self.replays.seen_before(fields):
            return False
        if self.metrics is not None:
            self.metrics.ws_replayed.inc()
        return True

    def _reject(self, rejected: Rejected, raw: str) -> None:
        self.summary.read += 1
        record = RawRecord(self.messages, raw, None)
        dead = self.screener.rejected(record, rejected.field, rejected.detail)
        deliver(dead, self.pacer, self.sink, self.summary)

    def _record(self, record: RawRecord) -> None:
        handle_record(record, self.screener, self.pacer, self.sink, self.summary)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def run_feed(
    options: WsOptions,
    screener: Screener,
    sink: Sink,
    in_flight: Callable[[], int],
    metrics: IngestMetrics,
    source_metrics: SourceMetrics | None = None,
) -> IngestSummary:
    """The feed until SIGTERM or SIGINT (`marketsignal ingest --ws URL`), in a new event loop."""

    async def main() -> IngestSummary:
        feed = WsSource(options, screener, sink, in_flight, metrics, source_metrics=source_metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, feed.stop)
        return await feed.run()

    return asyncio.run(main())
