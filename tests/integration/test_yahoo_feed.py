"""`marketsignal ingest --yahoo` on the real broker, against a local streamer.

The streamer (tests/support/feed_server.py) sends what Yahoo's does, each message a base64
PricingData built with yfinance's own class: snapshots of 0700.HK and 600519.SS (one a
repeat of the state before it), ^HSI as an index, and one message that is no protobuf.
It drops mid-stream and, once the client is back, re-sends from before the drop. On
`ticks`: a tick per change of state, once, canonical, its volume the day volume's
increase (so each symbol's volumes add up to its last day volume); on the dead letters:
the bad message once, as sent; the subscription sent again on the new connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.dead_letter import DeadLetter
from services.runtime.settings import Settings
from tests.support.feed_server import FeedServer, yahoo_message
from tests.support.live_ingest import (
    T0_MS,
    has_read_through,
    ingest,
    readyz,
    scrape,
    stop,
    ticks_of,
    wait_metric,
    wait_ticks,
)
from tests.support.services import free_port

pytestmark = pytest.mark.integration

BAD = '{"type":"pricing","message":"bm90IGEgcHJpY2luZyBtZXNzYWdl!"}'


def quote(second: int, symbol: str, price: float, day_volume: int = 0, **more: Any) -> str:
    return yahoo_message(
        id=symbol, price=price, day_volume=day_volume, time=T0_MS + second * 1000, **more
    )


MESSAGES = [
    quote(0, "0700.HK", 496.2, 1_000),
    quote(1, "600519.SS", 1520.5, 500),
    quote(2, "0700.HK", 496.2, 1_000),  # the same state: no trade
    BAD,
    quote(3, "0700.HK", 496.4, 1_600),
    quote(4, "^HSI", 26123.45, quote_type=9),  # an index; --symbol-map names it
    quote(5, "600519.SS", 1521.0, 800),
    quote(6, "0700.HK", 497.0, 2_000),
    quote(7, "600519.SS", 1519.0, 900),
]
DROP_AFTER = 7  # the first connection sends MESSAGES[:7], through 600519.SS at 800
RESEND_FROM = 4  # the second re-sends from 0700.HK at 1,600 on
EXPECTED = [
    ("0700.HK", 496.2, 1_000, "trade"),
    ("600519.SH", 1520.5, 500, "trade"),
    ("0700.HK", 496.4, 600, "trade"),
    ("HSI.HK", 26123.45, 0, "index"),
    ("600519.SH", 1521.0, 300, "trade"),
    ("0700.HK", 497.0, 400, "trade"),
    ("600519.SH", 1519.0, 100, "trade"),
]


def test_yahoo_streamer_to_canonical_ticks_and_dead_letters(
    tmp_path: Path,
    settings: Callable[..., Settings],
    read_topic: Callable[..., list[Any]],
) -> None:
    s = settings(partitions=1)
    port = free_port()
    last_before_drop_s = (T0_MS + 5 * 1000) / 1000

    delivered = has_read_through(port, last_before_drop_s)

    server = FeedServer(MESSAGES, DROP_AFTER, RESEND_FROM, delivered=delivered)
    server.start()
    symbol_map = tmp_path / "symbols.txt"
    symbol_map.write_text("^HSI=HSI.HK\n")
    proc = ingest(
        s,
        "--yahoo",
        "0700.HK,600519.SS,^HSI",
        "--ws",
        f"ws://127.0.0.1:{server.port}/?version=2",
        "--symbol-map",
        str(symbol_map),
        "--backoff-initial",
        "0.2",
        "--backoff-max",
        "1",
        metrics_port=port,
        bundle=True,
    )
    try:
        assert server.dropped.wait(60), "the client never received the first messages"
        wait_metric(port, "marketsignal_ingest_ws_reconnects_total", lambda v: v >= 1, proc)
        down = readyz(port)  # the streamer is gone: not ready
        server.start()  # back on the same port
        got = wait_ticks(read_topic, s.ticks_topic, len(EXPECTED))
        up = readyz(port)
        metrics = scrape(port)
        code, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
    assert code == 0, err
    assert (down, up) == (503, 200)
    assert metrics['marketsignal_ingest_source_ticks_total{source="yahoo"}'] == len(EXPECTED)
    assert metrics['marketsignal_ingest_source_connected{source="yahoo"}'] == 1
    assert metrics['marketsignal_ingest_source_reconnects_total{source="yahoo"}'] >= 1
    # 7 messages, then 5 re-sent and new ones: all read, whatever became ticks
    assert metrics['marketsignal_ingest_source_messages_total{source="yahoo"}'] == 7 + 5
    assert [(t["symbol"], t["price"], t["volume"], t["kind"]) for t in got] == EXPECTED
    assert ticks_of(read_topic(s.ticks_topic)) == got  # and nothing arrived after
    assert got[0] == {
        "symbol": "0700.HK",
        "ts": "2026-01-01T08:00:00+08:00",  # Yahoo's epoch ms, in the HK exchange zone
        "price": 496.2,  # the protobuf float's shortest decimal
        "volume": 1_000,
        "kind": "trade",
    }
    assert got[1]["ts"] == "2026-01-01T08:00:01+08:00"  # Shanghai's zone
    # Each symbol's volumes add up to its last day volume.
    assert sum(t["volume"] for t in got if t["symbol"] == "0700.HK") == 2_000
    assert sum(t["volume"] for t in got if t["symbol"] == "600519.SH") == 900
    [dead] = [DeadLetter.model_validate_json(r.value) for r in read_topic(s.dlq_topic, expect=1)]
    assert (dead.reason, dead.field, dead.line) == ("malformed", None, 4)
    assert dead.raw == BAD
    assert "not a base64 PricingData" in dead.detail
    # yfinance's subscribe message, on each connection
    subscribe = json.dumps({"subscribe": ["0700.HK", "600519.SS", "^HSI"]}, separators=(",", ":"))
    assert server.subscribes == [subscribe] * 2
