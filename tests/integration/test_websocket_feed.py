"""The WebSocket feed on the real broker (`marketsignal ingest --ws`).

The feed is a real local server (the `websockets` library) started by the test: it drops
the connection mid-stream without a close frame, goes away for a moment, comes back, and
re-sends from a little before the drop. What lands on `ticks` must be every tick exactly
once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from schemas.dead_letter import DeadLetter
from services.runtime.settings import Settings
from tests.support.feed_server import FeedServer
from tests.support.live_ingest import (
    BUNDLES,
    T0_MS,
    has_read_through,
    ingest,
    prices,
    scrape,
    stop,
    wait_metric,
    wait_prices,
)
from tests.support.services import free_port
from tests.support.wait import wait_for_async

pytestmark = pytest.mark.integration


def tick_message(i: int) -> str:
    return json.dumps({"symbol": "Z", "ts": T0_MS + i * 1000, "price": 100 + i})


def feed_messages() -> list[str]:
    """40 messages: single ticks, one array of three, a heartbeat and a malformed tick."""
    messages, i = [], 0
    for n in range(40):
        if n == 10:
            messages.append(json.dumps([json.loads(tick_message(i + k)) for k in range(3)]))
            i += 3
        elif n == 15:
            messages.append(json.dumps({"type": "heartbeat"}))
        elif n == 27:  # re-sent after the drop too: dead-lettered once only
            messages.append(json.dumps({"symbol": "Z", "ts": T0_MS, "price": True}))
        else:
            messages.append(tick_message(i))
            i += 1
    return messages


class Collect:
    """A sink for a WsSource run without the broker: keeps the ticks, fails on a dead letter."""

    def __init__(self) -> None:
        self.ticks: list[Any] = []

    def tick(self, tick: Any) -> None:
        self.ticks.append(tick)

    def dead_letter(self, dead: Any) -> None:
        raise AssertionError(dead)


@BUNDLES
def test_websocket_feed_reconnects_with_nothing_lost_or_duplicated(
    tmp_path: Path,
    settings: Callable[..., Settings],
    read_topic: Callable[..., list[Any]],
    bundle: bool,
) -> None:
    s = settings(partitions=1)
    messages = feed_messages()
    n_ticks = 40  # 37 single-tick messages and an array of 3 (no heartbeat, no bad one)
    port = free_port()
    # The 30th message is one tick: the client has read them all once it has seen its time.
    last_ts_s = json.loads(messages[29])["ts"] / 1000

    delivered = has_read_through(port, last_ts_s)

    server = FeedServer(messages, drop_after=30, resend_from=24, delivered=delivered)
    server.start()
    subscribe = tmp_path / "subscribe.json"
    subscribe.write_text('{"op": "subscribe", "symbols": ["Z"]}')
    proc = ingest(
        s,
        "--ws",
        f"ws://127.0.0.1:{server.port}/feed",
        "--subscribe",
        str(subscribe),
        "--backoff-initial",
        "0.2",
        "--backoff-max",
        "1",
        "--ping-interval",
        "1",
        "--ping-timeout",
        "5",
        "--max-in-flight",
        "2",
        metrics_port=port,
        bundle=bundle,
    )
    try:
        assert server.dropped.wait(60), "the client never received the first messages"
        wait_metric(port, "marketsignal_ingest_ws_reconnects_total", lambda v: v >= 2, proc)
        server.start()  # back on the same port
        got = wait_prices(read_topic, s.ticks_topic, n_ticks, timeout_s=90)
        # The replayed messages (24..29) came before the last ticks: counted by now.
        metrics = scrape(port)
        code, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
    assert code == 0, err
    assert got == [100 + i for i in range(n_ticks)]
    assert prices(read_topic(s.ticks_topic)) == got  # and nothing arrived after
    assert server.connections == 2
    assert server.subscribes == ['{"op": "subscribe", "symbols": ["Z"]}'] * 2
    assert metrics["marketsignal_ingest_ws_reconnects_total"] >= 2
    # messages 24..29 came twice (one of them the malformed tick): each dropped once
    assert metrics["marketsignal_ingest_ws_replayed_total"] == 6
    assert metrics["marketsignal_ingest_ws_connected"] == 1
    [dead] = [DeadLetter.model_validate_json(r.value) for r in read_topic(s.dlq_topic)]
    assert (dead.field, dead.line) == ("price", 28)


def test_websocket_reader_stops_reading_while_kafka_has_too_much_unacknowledged() -> None:
    """Back-pressure, with the broker's acknowledgements replaced by a gate: while more
    than --max-in-flight records are unacknowledged, the source reads no further message
    (the server's are left queued), and it reads them all once the gate opens."""
    from datetime import UTC, datetime

    from schemas.zones import ExchangeZones
    from services.ingestor.screening import Screener
    from services.ingestor.websocket import WsOptions, WsSource

    port = free_port()
    sent = 200

    async def handler(ws: ServerConnection) -> None:
        for i in range(sent):
            await ws.send(tick_message(i))
        await ws.wait_closed()

    async def scenario() -> tuple[int, int]:
        unacked = [1_000]  # Kafka "slow": far over the limit until the gate opens
        sink = Collect()
        screener = Screener(ExchangeZones(), 5.0, "ws", lambda: datetime.now(UTC))
        source = WsSource(
            WsOptions(url=f"ws://127.0.0.1:{port}", max_in_flight=10, max_queue=4),
            screener,
            sink,
            lambda: unacked[0],
        )
        async with serve(handler, "127.0.0.1", port):
            task = asyncio.create_task(source.run())
            # The source's own counter: it offers no event to await.
            await wait_for_async("the first message read", lambda: source.messages, 30)
            # Not a wait for a condition but a window in which none may happen: time
            # enough to read everything, were it reading.
            await asyncio.sleep(1.0)
            while_blocked = source.messages
            unacked[0] = 0  # acknowledged: reading resumes
            await wait_for_async(f"{sent} ticks", lambda: len(sink.ticks) >= sent, 30)
            source.stop()
            await asyncio.wait_for(task, 10)
        return while_blocked, len(sink.ticks)

    while_blocked, delivered = asyncio.run(scenario())
    assert while_blocked == 1  # the message in hand, then it waited
    assert delivered == sent


def test_websocket_silent_connection_is_dropped_by_the_ping_timeout_and_reconnected() -> None:
    """A feed that stops answering (its pongs never come, as behind a dead NAT entry or a
    hung server) is given up after --ping-timeout and dialled again, with the reconnect
    counted; a silent but healthy-looking TCP connection must not stall the feed for ever."""
    from datetime import UTC, datetime

    from prometheus_client import CollectorRegistry

    from schemas.zones import ExchangeZones
    from services.ingestor.metrics import IngestMetrics
    from services.ingestor.screening import Screener
    from services.ingestor.websocket import WsOptions, WsSource

    port = free_port()
    opened: list[float] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        opened.append(time.monotonic())
        await ws.send(tick_message(len(opened)))
        # Then silence: read nothing more, so the client's pings are never answered.
        assert ws.transport is not None
        ws.transport.pause_reading()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 30)

    async def scenario() -> tuple[WsSource, float]:
        registry = CollectorRegistry()
        metrics = IngestMetrics(registry)
        sink = Collect()
        screener = Screener(ExchangeZones(), 5.0, "ws", lambda: datetime.now(UTC))
        options = WsOptions(
            url=f"ws://127.0.0.1:{port}",
            ping_interval_s=0.3,
            ping_timeout_s=0.5,
            backoff_initial_s=0.05,
            backoff_max_s=0.1,
        )
        source = WsSource(options, screener, sink, lambda: 0, metrics)
        # close_timeout: the paused connections can't take part in the closing handshake.
        async with serve(handler, "127.0.0.1", port, close_timeout=0.5):
            task = asyncio.create_task(source.run())
            await wait_for_async("three connections", lambda: len(opened) >= 3, 30)
            source.stop()
            await asyncio.wait_for(task, 15)
            done.set()
        reconnects = registry.get_sample_value("marketsignal_ingest_ws_reconnects_total")
        return source, reconnects or 0.0

    source, reconnects = asyncio.run(scenario())
    assert len(opened) >= 3, "the silent connection was never given up"
    assert source.connections >= 3
    assert reconnects >= 2
    # Each silent connection lasted about ping interval + ping timeout + close wait (the
    # ping timeout again): not the server's 30 s, nor the library's 10 s close wait.
    assert max(b - a for a, b in itertools.pairwise(opened)) < 5
