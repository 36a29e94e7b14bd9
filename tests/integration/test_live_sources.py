"""Live sources on the real broker: standard input, a followed file, a WebSocket feed.

The WebSocket feed is a real local server (the `websockets` library) started by the test:
it drops the connection mid-stream without a close frame, goes away for a moment, comes
back, and re-sends from a little before the drop. What lands on `ticks` must be every
tick exactly once, in order.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from schemas.dead_letter import DeadLetter
from services.runtime.settings import Settings
from tests import factories
from tests.summary import summary_counts

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(settings: Settings, metrics_port: int | None = None) -> dict[str, str]:
    return factories.service_env(settings, ingestor_metrics_port=metrics_port or 0)


def ingest(
    settings: Settings, *args: str, metrics_port: int | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "ingest", *args],
        cwd=ROOT,
        env=env_for(settings, metrics_port),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def csv_line(i: int) -> str:
    return f"Z,{T0_MS + i * 1000},{100 + i}\n"


def prices(records: list[Any]) -> list[float]:
    return [json.loads(r.value)["price"] for r in records]


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def wait_metric(port: int, name: str, check: Callable[[float], bool], proc: Any) -> float:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            value = scrape(port).get(name)
        except OSError:
            value = None
        if value is not None and check(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"{name} never satisfied the check")


# -- standard input -----------------------------------------------------------------------


def test_stdin_jsonl_and_csv_with_a_bom(
    settings: Callable[..., Settings], read_topic: Callable[..., list[Any]]
) -> None:
    s = settings(partitions=1)
    jsonl = "".join(
        json.dumps({"symbol": "Z", "ts": T0_MS + i * 1000, "price": 100 + i}) + "\n"
        for i in range(3)
    )
    proc = ingest(s, "-")
    _, err = proc.communicate(jsonl + '{"symbol":"Z","ts":1,"price":true}\n', timeout=120)
    assert proc.returncode == 0, err
    counts = summary_counts(err, "ingest:")
    assert (counts["read"], counts["published"], counts["dead-lettered"]) == (4, 3, 1)
    assert counts["malformed"] == 1
    # CSV with a byte-order mark, told by --format (there is no file name to go by)
    proc = ingest(s, "-", "--format", "csv")
    _, err = proc.communicate("\ufeffsymbol,ts,price\n" + csv_line(3) + csv_line(4), timeout=120)
    assert proc.returncode == 0, err
    assert prices(read_topic(s.ticks_topic, expect=5)) == [100, 101, 102, 103, 104]
    [dead] = [DeadLetter.model_validate_json(r.value) for r in read_topic(s.dlq_topic, expect=1)]
    assert (dead.source, dead.line, dead.field) == ("<stdin>", 4, "price")


# -- a followed file --------------------------------------------------------------------


def test_follow_survives_truncation_and_rotation_and_resumes_without_resending(
    tmp_path: Path, settings: Callable[..., Settings], read_topic: Callable[..., list[Any]]
) -> None:
    s = settings(partitions=1)
    feed, position = tmp_path / "feed.csv", tmp_path / "position.json"
    feed.write_text("symbol,ts,price\n" + csv_line(0) + csv_line(1) + csv_line(2))
    port = free_port()
    args = [str(feed), "--follow", "--position-file", str(position)]
    proc = ingest(s, *args, metrics_port=port)

    def expect(n: int) -> None:
        got = prices(read_topic(s.ticks_topic, expect=n, timeout_s=60))
        assert got == [100 + i for i in range(n)]

    expect(3)
    with feed.open("a") as fh:  # growth, and a line still being written
        fh.write(csv_line(3) + csv_line(4) + csv_line(5)[:6])
    expect(5)
    with feed.open("a") as fh:
        fh.write(csv_line(5)[6:])
    expect(6)
    # truncated in place (same inode): read again from the start, header included
    feed.write_text("symbol,ts,price\n" + csv_line(6) + csv_line(7))
    expect(8)
    # rotated: the old file's last line first, then the new file from its start
    rotated = tmp_path / "feed.csv.1"
    feed.rename(rotated)
    with rotated.open("a") as fh:
        fh.write(csv_line(8))
    feed.write_text("symbol,ts,price\n" + csv_line(9) + csv_line(10))
    expect(11)
    last = wait_metric(
        port,
        "marketsignal_ingest_last_tick_timestamp_seconds",
        lambda v: v == (T0_MS + 10_000) / 1000,
        proc,
    )
    assert last == (T0_MS + 10_000) / 1000
    code, err = stop(proc)
    assert code == 0, err
    counts = summary_counts(err, "ingest:")
    assert (counts["read"], counts["published"], counts["dead-lettered"]) == (11, 11, 0)
    assert json.loads(position.read_text())["offset"] == feed.stat().st_size

    # stopped: two lines arrive meanwhile; a restart sends only those
    with feed.open("a") as fh:
        fh.write(csv_line(11) + csv_line(12))
    proc = ingest(s, *args)
    expect(13)
    # Stopping flushes the producer: whatever this run sent is on the topic afterwards,
    # and its own count says it read and sent the two new lines only.
    code, err = stop(proc)
    assert code == 0, err
    counts = summary_counts(err, "ingest:")
    assert (counts["read"], counts["published"]) == (2, 2)
    assert prices(read_topic(s.ticks_topic)) == [100 + i for i in range(13)]


# -- a WebSocket feed -------------------------------------------------------------------


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


class FeedServer:
    """Sends `messages`; the first connection drops after `drop_after`, and the next ones
    re-send from `resend_from` on, then stay open."""

    def __init__(self, messages: list[str], drop_after: int, resend_from: int) -> None:
        self.messages = messages
        self.drop_after = drop_after
        self.resend_from = resend_from
        self.port = free_port()
        self.subscribes: list[str] = []
        self.connections = 0
        self.dropped = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server | None = None

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        first = self.connections == 1
        self.subscribes.append(str(await ws.recv()))
        if first:
            for message in self.messages[: self.drop_after]:
                await ws.send(message)
            await asyncio.sleep(0.5)  # let them reach the client
            # Gone for a moment: stop listening, then drop the connection (no close
            # frame), so the client's first reconnect attempts are refused.
            assert self.server is not None
            self.server.close(close_connections=False)
            assert ws.transport is not None
            ws.transport.abort()
            self.dropped.set()
            return
        for message in self.messages[self.resend_from :]:
            await ws.send(message)
        await ws.wait_closed()

    def start(self) -> None:
        async def up() -> Server:
            return await serve(self.handler, "127.0.0.1", self.port)

        self.server = asyncio.run_coroutine_threadsafe(up(), self.loop).result(10)

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def test_websocket_feed_reconnects_with_nothing_lost_or_duplicated(
    tmp_path: Path, settings: Callable[..., Settings], read_topic: Callable[..., list[Any]]
) -> None:
    s = settings(partitions=1)
    messages = feed_messages()
    n_ticks = 40  # 37 single-tick messages and an array of 3 (no heartbeat, no bad one)
    server = FeedServer(messages, drop_after=30, resend_from=24)
    server.start()
    subscribe = tmp_path / "subscribe.json"
    subscribe.write_text('{"op": "subscribe", "symbols": ["Z"]}')
    port = free_port()
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
    )
    try:
        assert server.dropped.wait(60), "the client never received the first messages"
        wait_metric(port, "marketsignal_ingest_ws_reconnects_total", lambda v: v >= 2, proc)
        server.start()  # back on the same port
        got = prices(read_topic(s.ticks_topic, expect=n_ticks, timeout_s=90))
        time.sleep(1.5)  # anything sent twice would be on the topic by now
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

    class Collect:
        def __init__(self) -> None:
            self.ticks: list[Any] = []

        def tick(self, tick: Any) -> None:
            self.ticks.append(tick)

        def dead_letter(self, dead: Any) -> None:
            raise AssertionError(dead)

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
            deadline = time.monotonic() + 30
            # The source's own counter, polled under a deadline: it offers no event.
            while source.messages == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # time enough to read everything, were it reading
            while_blocked = source.messages
            unacked[0] = 0  # acknowledged: reading resumes
            while len(sink.ticks) < sent and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            source.stop()
            await asyncio.wait_for(task, 10)
        return while_blocked, len(sink.ticks)

    while_blocked, delivered = asyncio.run(scenario())
    assert while_blocked == 1  # the message in hand, then it waited
    assert delivered == sent
