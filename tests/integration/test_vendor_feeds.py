"""A built-in adapter on the real broker: `marketsignal ingest --ws URL --adapter polygon`.

The feed is test_websocket_feed.py's server, speaking Polygon's shape: status messages,
arrays of trades, a quote, a malformed trade beside good ones, an unmappable symbol and
one the user's --symbol-map renames. It drops mid-stream and re-sends from before the
drop. On `ticks`: every trade exactly once, as canonical ticks; on the dead letters: each
bad element once, quoting it as the source sent it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.dead_letter import DeadLetter
from services.runtime.settings import Settings
from tests.support.feed_server import FeedServer
from tests.support.live_ingest import (
    T0_MS,
    has_read_through,
    ingest,
    scrape,
    stop,
    ticks_of,
    wait_metric,
    wait_ticks,
)
from tests.support.services import free_port

pytestmark = pytest.mark.integration


def trade(i: int, sym: str = "AAPL", **changes: Any) -> dict[str, Any]:
    """Polygon's stocks trade, every documented field set."""
    return {
        "ev": "T",
        "sym": sym,
        "x": 4,
        "i": str(i),
        "z": 3,
        "p": 100.0 + i,
        "s": 100 + i,
        "c": [12],
        "t": T0_MS + i * 1000,
        "q": i,
        **changes,
    }


def status(state: str, message: str) -> dict[str, Any]:
    return {"ev": "status", "status": state, "message": message}


BAD_PRICE = trade(2, p="n/a")
UNMAPPABLE = [trade(4, sym="HK.ABC")]
MESSAGES: list[Any] = [
    [status("connected", "Connected Successfully")],
    [status("auth_success", "authenticated")],
    [status("success", "subscribed to: T.*")],
    [trade(0)],
    [trade(1), BAD_PRICE, trade(3, sym="HK.00700")],
    [{"ev": "Q", "sym": "AAPL", "bp": 103.9, "ap": 104.1, "t": T0_MS + 3500}],
    UNMAPPABLE,
    [trade(5, sym="HK.800000")],  # an index code: mapped by the user's --symbol-map
    *([trade(i)] for i in range(6, 12)),
    *([trade(i)] for i in range(12, 16)),
]
DROP_AFTER = 14  # the first connection sends MESSAGES[:14], through trade 11
RESEND_FROM = 4  # the second re-sends from the message with the bad price on
EXPECTED = [
    ("AAPL", 100.0),
    ("AAPL", 101.0),
    ("0700.HK", 103.0),
    ("HSI.HK", 105.0),
    *(("AAPL", 100.0 + i) for i in range(6, 16)),
]


def test_polygon_feed_to_canonical_ticks_and_dead_letters(
    tmp_path: Path,
    settings: Callable[..., Settings],
    read_topic: Callable[..., list[Any]],
) -> None:
    s = settings(partitions=1)
    port = free_port()
    last_before_drop_s = (T0_MS + 11 * 1000) / 1000

    delivered = has_read_through(port, last_before_drop_s)

    server = FeedServer(
        [json.dumps(m) for m in MESSAGES], DROP_AFTER, RESEND_FROM, delivered=delivered
    )
    server.start()
    subscribe = tmp_path / "subscribe.json"
    subscribe.write_text('{"action":"subscribe","params":"T.*"}')
    symbol_map = tmp_path / "symbols.txt"
    symbol_map.write_text("# Futu's Hang Seng Index code\nHK.800000=HSI.HK\n")
    proc = ingest(
        s,
        "--ws",
        f"ws://127.0.0.1:{server.port}/stocks",
        "--adapter",
        "polygon",
        "--symbol-map",
        str(symbol_map),
        "--subscribe",
        str(subscribe),
        "--no-login",  # the server stands for a relay: test_vendor_login.py logs in
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
        server.start()  # back on the same port
        got = wait_ticks(read_topic, s.ticks_topic, len(EXPECTED))
        metrics = scrape(port)
        code, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
    assert code == 0, err
    assert [(t["symbol"], t["price"]) for t in got] == EXPECTED
    assert ticks_of(read_topic(s.ticks_topic)) == got  # and nothing arrived after
    by_symbol = {t["symbol"]: t for t in got}
    assert by_symbol["0700.HK"] == {
        "symbol": "0700.HK",
        "ts": "2026-01-01T08:00:03+08:00",  # Polygon's epoch ms, in the HK exchange zone
        "price": 103.0,
        "volume": 103,
        "kind": "trade",
    }
    assert by_symbol["HSI.HK"]["volume"] == 105
    assert got[0] == {
        "symbol": "AAPL",
        "ts": "2026-01-01T00:00:00Z",
        "price": 100.0,
        "volume": 100,
        "kind": "trade",
    }
    # The bad elements came twice (before the drop and re-sent): dead-lettered once each.
    dead = [DeadLetter.model_validate_json(r.value) for r in read_topic(s.dlq_topic, expect=2)]
    assert [(d.reason, d.field, d.line) for d in dead] == [
        ("malformed", "price", 5),
        ("malformed", "symbol", 7),
    ]
    assert json.loads(dead[0].raw) == BAD_PRICE  # the element of its array, as sent
    assert json.loads(dead[1].raw) == UNMAPPABLE  # alone in its message: the message
    assert "'HK.ABC': a HK code is digits" in dead[1].detail
    assert {d.source for d in dead} == {f"ws://127.0.0.1:{server.port}/stocks"}
    # re-sent: 3 items of message 4, the unmappable trade, the index, trades 6..11
    assert metrics["marketsignal_ingest_ws_replayed_total"] == 11
    assert metrics['marketsignal_ingest_dead_letters_total{reason="malformed"}'] == 2
    assert server.subscribes == ['{"action":"subscribe","params":"T.*"}'] * 2
