"""The built-in adapters log in, on the real broker: `marketsignal ingest --ws URL --adapter
polygon|alpaca --symbols AAPL,MSFT` with the key in the environment.

The feed is a local server that speaks the vendor's login: it sends its welcome, closes
any connection whose first message is not the auth message with the right key (so
nothing is sent before the login), answers the login after a moment (noting anything the
client sends before the answer), expects the subscription, and only then sends trades.
It drops the first connection mid-stream; the client must log in and subscribe again on
the second, where the server re-sends from a little before the drop. On `ticks`: every
trade once, as a canonical tick. With a wrong key: exit 2, one line, no retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from services.runtime.settings import Settings
from tests.support import factories
from tests.support.live_ingest import (
    ROOT,
    T0_MS,
    has_read_through,
    scrape,
    stop,
    ticks_of,
    wait_metric,
)
from tests.support.services import free_port
from tests.support.wait import wait_for, wait_for_async

pytestmark = pytest.mark.integration

KEY = "test-key-0123456789abcdef"
SECRET = "test-secret-fedcba9876543210"
SYMBOLS = ("AAPL", "MSFT")
TRADES = 12
DROP_AFTER = 8  # trades sent on the first connection
RESEND_FROM = 6  # the second connection re-sends from this trade on
ANSWER_DELAY_S = 0.3  # the server answers the login after this long


@dataclass(frozen=True)
class Vendor:
    """One vendor's side of the login, as its documentation shows it (docs/feeds.md)."""

    name: str
    env: dict[str, str]  # settings that hold the credentials, right ones
    wrong_env: dict[str, str]
    welcome: list[dict[str, Any]]
    auth: dict[str, Any]  # the auth message the right credentials make
    authenticated: list[dict[str, Any]]
    refused: list[dict[str, Any]]
    subscribe: dict[str, Any]
    subscribed: list[dict[str, Any]]
    trade: Callable[[int], dict[str, Any]]
    refusal: str  # the client's one line for a wrong key


def symbol(i: int) -> str:
    return SYMBOLS[i % 2]


POLYGON = Vendor(
    name="polygon",
    env={"polygon_api_key": KEY},
    wrong_env={"polygon_api_key": "not-the-key-0123456789"},
    welcome=[{"ev": "status", "status": "connected", "message": "Connected Successfully"}],
    auth={"action": "auth", "params": KEY},
    authenticated=[{"ev": "status", "status": "auth_success", "message": "authenticated"}],
    refused=[{"ev": "status", "status": "auth_failed", "message": "authentication failed"}],
    subscribe={"action": "subscribe", "params": "T.AAPL,T.MSFT"},
    subscribed=[{"ev": "status", "status": "success", "message": "subscribed to: T.AAPL"}],
    trade=lambda i: {
        "ev": "T",
        "sym": symbol(i),
        "x": 4,
        "i": str(i),
        "z": 3,
        "p": 100.0 + i,
        "s": 10 + i,
        "c": [12],
        "t": T0_MS + i * 1000,
        "q": i,
    },
    refusal="marketsignal: Polygon refused the login (auth_failed: authentication failed): "
    "check MARKETSIGNAL_POLYGON_API_KEY",
)
ALPACA = Vendor(
    name="alpaca",
    env={"alpaca_key_id": KEY, "alpaca_secret_key": SECRET},
    wrong_env={"alpaca_key_id": KEY, "alpaca_secret_key": "not-the-secret-0123456789"},
    welcome=[{"T": "success", "msg": "connected"}],
    auth={"action": "auth", "key": KEY, "secret": SECRET},
    authenticated=[{"T": "success", "msg": "authenticated"}],
    refused=[{"T": "error", "code": 402, "msg": "auth failed"}],
    subscribe={"action": "subscribe", "trades": ["AAPL", "MSFT"]},
    subscribed=[{"T": "subscription", "trades": ["AAPL", "MSFT"], "quotes": [], "bars": []}],
    trade=lambda i: {
        "T": "t",
        "S": symbol(i),
        "i": i,
        "x": "V",
        "p": 100.0 + i,
        "s": 10 + i,
        "t": datetime.fromtimestamp(T0_MS / 1000 + i, UTC).isoformat().replace("+00:00", "Z"),
        "c": ["@"],
        "z": "C",
    },
    refusal="marketsignal: Alpaca refused the login (error 402: auth failed): "
    "check MARKETSIGNAL_ALPACA_KEY_ID and MARKETSIGNAL_ALPACA_SECRET_KEY",
)
VENDORS = pytest.mark.parametrize("vendor", [POLYGON, ALPACA], ids=lambda v: v.name)


class LoginServer:
    """The vendor's feed: login first, then the subscription, then trades (module doc)."""

    def __init__(self, vendor: Vendor, delivered: Callable[[], bool]) -> None:
        self.vendor = vendor
        self.delivered = delivered
        self.port = free_port()
        self.connections = 0
        self.logins: list[Any] = []  # each connection's first message
        self.subscribes: list[Any] = []
        self.refused = 0
        self.early: list[Any] = []  # sent before the login was answered
        self.dropped = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Server | None = None

    async def handler(self, ws: ServerConnection) -> None:
        v = self.vendor
        self.connections += 1
        first = self.connections == 1
        await ws.send(json.dumps(v.welcome))
        login = json.loads(await ws.recv())
        self.logins.append(login)
        if login != v.auth:
            # Nothing but the right auth message opens the feed.
            self.refused += 1
            await ws.send(json.dumps(v.refused))
            await ws.close()
            return
        # The answer takes a moment: a client that does not wait for it sends on.
        early: str | bytes | None = None
        with contextlib.suppress(TimeoutError):
            early = await asyncio.wait_for(ws.recv(), ANSWER_DELAY_S)
        if early is not None:
            self.early.append(json.loads(early))
        await ws.send(json.dumps(v.authenticated))
        subscribe = json.loads(early if early is not None else await ws.recv())
        self.subscribes.append(subscribe)
        if subscribe != v.subscribe:
            await ws.close()
            return
        await ws.send(json.dumps(v.subscribed))
        if first:
            for i in range(DROP_AFTER):
                await ws.send(json.dumps([v.trade(i)]))
            await wait_for_async("the client to read the first trades", self.delivered, 60)
            assert ws.transport is not None
            ws.transport.abort()  # a drop without a close frame
            self.dropped.set()
            return
        for i in range(RESEND_FROM, TRADES):
            await ws.send(json.dumps([v.trade(i)]))
        await ws.wait_closed()

    def start(self) -> None:
        async def up() -> Server:
            return await serve(self.handler, "127.0.0.1", self.port)

        self.server = asyncio.run_coroutine_threadsafe(up(), self.loop).result(10)

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def ingest(
    settings: Settings, env: Mapping[str, Any], *args: str, metrics_port: int = 0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "ingest", *args],
        cwd=ROOT,
        env=factories.service_env(
            settings,
            ingestor_metrics_port=metrics_port,
            ingest_bundle="true",
            **env,  # the credentials: MARKETSIGNAL_POLYGON_API_KEY...
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def feed_args(vendor: Vendor, server: LoginServer) -> list[str]:
    return [
        "--ws",
        f"ws://127.0.0.1:{server.port}/stocks",
        "--adapter",
        vendor.name,
        "--symbols",
        ",".join(SYMBOLS),
        "--backoff-initial",
        "0.2",
        "--backoff-max",
        "1",
    ]


@VENDORS
def test_login_subscribe_and_again_after_a_drop(
    vendor: Vendor, settings: Callable[..., Settings], read_topic: Callable[..., list[Any]]
) -> None:
    s = settings(partitions=1)
    port = free_port()
    last_before_drop_s = (T0_MS + (DROP_AFTER - 1) * 1000) / 1000

    delivered = has_read_through(port, last_before_drop_s)

    server = LoginServer(vendor, delivered)
    server.start()
    proc = ingest(s, vendor.env, *feed_args(vendor, server), metrics_port=port)
    got: list[dict[str, Any]] = []

    def all_ticks() -> bool:
        got[:] = ticks_of(read_topic(s.ticks_topic))
        return len(got) >= TRADES

    try:
        assert server.dropped.wait(60), "the client never read the first trades"
        wait_metric(port, "marketsignal_ingest_ws_reconnects_total", lambda v: v >= 1, proc)
        wait_for(f"{TRADES} ticks on {s.ticks_topic}", all_ticks, 90, max_poll_s=0.2)
        metrics = scrape(port)
        code, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
    assert code == 0, err
    assert [(t["symbol"], t["price"], t["volume"]) for t in got] == [
        (symbol(i), 100.0 + i, 10 + i) for i in range(TRADES)
    ]
    assert ticks_of(read_topic(s.ticks_topic)) == got  # and nothing arrived after
    assert got[0] == {
        "symbol": "AAPL",
        "ts": "2026-01-01T00:00:00Z",
        "price": 100.0,
        "volume": 10,
        "kind": "trade",
    }
    # Each connection: the auth message, then (after its answer) the subscription.
    assert server.logins == [vendor.auth, vendor.auth]
    assert server.subscribes == [vendor.subscribe, vendor.subscribe]
    assert server.refused == 0
    assert server.early == []
    assert metrics["marketsignal_ingest_ws_replayed_total"] == DROP_AFTER - RESEND_FROM
    assert KEY not in err
    assert SECRET not in err


@VENDORS
def test_a_wrong_key_stops_ingest_with_one_line(
    vendor: Vendor, settings: Callable[..., Settings]
) -> None:
    s = settings(partitions=1)
    server = LoginServer(vendor, delivered=lambda: False)
    server.start()
    proc = ingest(s, vendor.wrong_env, *feed_args(vendor, server))
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == [vendor.refusal]
    # No retry: a wrong key will not fix itself.
    assert server.connections == 1
    assert server.refused == 1
    for value in vendor.wrong_env.values():
        assert value not in err
