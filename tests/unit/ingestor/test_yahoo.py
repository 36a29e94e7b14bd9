"""`ingest --yahoo`: Yahoo streamer messages, built with yfinance's own protobuf class
(PricingData), through the adapter and the WebSocket source's message path."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from services.cli import main
from services.ingestor.adapters import yahoo
from services.ingestor.adapters.base import Mapped
from services.ingestor.adapters.yahoo import YahooPricing, protobuf_decoder
from services.ingestor.symbols import SymbolMap
from services.ingestor.websocket import WsOptions, WsSource
from tests.support.feed_server import yahoo_message
from tests.unit.ingestor.test_vendor_adapters import feed

T_MS = 1_770_948_000_123  # 2026-02-13T02:00:00.123Z


def pricing(**fields: Any) -> str:
    """A streamer message as Yahoo sends it, at T_MS unless told otherwise."""
    return yahoo_message(**{"time": T_MS, **fields})


def adapter(symbols: SymbolMap | None = None) -> YahooPricing:
    return YahooPricing(symbols or SymbolMap(), protobuf_decoder())


def test_a_pricing_message_becomes_a_tick_in_canonical_form() -> None:
    source, sink = feed(adapter())
    source.handle_message(pricing(id="600519.SS", price=1520.5, day_volume=12_345, price_hint=2))
    assert sink.dead == []
    assert sink.ticks == [
        {
            "symbol": "600519.SH",  # Yahoo's Shanghai suffix, mapped
            "ts": "2026-02-13T10:00:00.123000+08:00",  # epoch ms, in the exchange zone
            "price": 1520.5,
            "volume": 12_345,  # the first snapshot: the day's volume so far
            "kind": "trade",
        }
    ]


def test_the_float_price_keeps_its_shortest_decimal() -> None:
    items = list(adapter()(json.loads(pricing(id="0700.HK", price=496.2, day_volume=1))))
    assert isinstance(items[0], Mapped)
    assert items[0].fields["price"] == 496.2  # not 496.20001220703125, the float32


def test_snapshots_become_ticks_only_when_something_changed() -> None:
    source, sink = feed(adapter())
    for price, volume, ms in [
        (496.2, 1000, 0),
        (496.2, 1000, 1000),  # the same state, later: no trade
        (496.4, 1000, 2000),  # the price moved: volume 0
        (496.4, 1600, 3000),  # 600 more shares
        (496.4, 200, 4000),  # the day volume restarted: a new day
    ]:
        source.handle_message(pricing(id="0700.HK", price=price, day_volume=volume, time=T_MS + ms))
    assert [(t["price"], t["volume"]) for t in sink.ticks] == [
        (496.2, 1000),
        (496.4, 0),
        (496.4, 600),
        (496.4, 200),
    ]
    assert sink.dead == []


def test_an_index_is_an_index_tick_and_the_symbol_map_names_it() -> None:
    source, sink = feed(adapter(SymbolMap({"^HSI": "HSI.HK"})))
    source.handle_message(pricing(id="^HSI", price=26123.45, quote_type=9))
    assert sink.ticks == [
        {
            "symbol": "HSI.HK",
            "ts": "2026-02-13T10:00:00.123000+08:00",
            "price": 26123.45,
            "volume": 0,
            "kind": "index",
        }
    ]


@pytest.mark.parametrize(
    ("message", "field", "detail"),
    [
        ('{"type":"pricing","message":"not base64!"}', None, "not a base64 PricingData"),
        ('{"type":"pricing","message":"/////w=="}', None, "not a base64 PricingData"),
        ('{"type":"pricing","message":7}', None, "not base64 text"),
        ('{"type":"pricing"}', None, 'no "message"'),
        ("[1, 2]", None, "expected a JSON object"),
        (pricing(id="HK.TCH", price=1.0), "symbol", "a HK code is digits"),
        (pricing(id="", price=1.0), "symbol", "id: missing"),
        (pricing(id="0700.HK", price=0.0), "price", "must be a finite number > 0"),
        (pricing(id="0700.HK", price=1.0, time=0), "ts", "time: missing"),
        (pricing(id="0700.HK", price=1.0, day_volume=-5), "volume", "cumulative volume"),
    ],
)
def test_malformed_messages_are_dead_letters_quoting_them(
    message: str, field: str | None, detail: str
) -> None:
    source, sink = feed(adapter())
    source.handle_message(message)
    assert sink.ticks == []
    [dead] = sink.dead
    assert (dead.reason, dead.field) == ("malformed", field)
    assert detail in dead.detail
    assert dead.raw == message  # as Yahoo sent it, base64 and all


def test_a_bad_snapshot_does_not_move_the_volume_it_is_measured_from() -> None:
    source, sink = feed(adapter())
    source.handle_message(pricing(id="0700.HK", price=500.0, day_volume=100))
    source.handle_message(pricing(id="0700.HK", price=0.0, day_volume=900))  # dead letter
    source.handle_message(pricing(id="0700.HK", price=501.0, day_volume=300))
    assert [t["volume"] for t in sink.ticks] == [100, 200]
    assert len(sink.dead) == 1


def test_other_message_types_are_skipped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, sink = feed(adapter())
    with caplog.at_level(logging.WARNING, "marketsignal.ingestor.yahoo"):
        source.handle_message('{"type":"heartbeat"}')
        source.handle_message('{"type":"heartbeat"}')
    assert (sink.ticks, sink.dead) == ([], [])
    assert [r.getMessage() for r in caplog.records] == [
        "Yahoo: 'heartbeat' messages are not trades, skipped (only trades become ticks)"
    ]


# -- subscribing ----------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: str) -> None:
        self.sent.append(message)


def test_the_subscription_is_yfinances_and_is_sent_again_while_connected() -> None:
    made = yahoo.handshake(["0700.HK", "600519.SS"])
    assert made.auth is None  # no login
    assert made.subscribe == ('{"subscribe":["0700.HK","600519.SS"]}',)
    assert made.resubscribe_every_s == 15.0  # yfinance's _subscription_interval
    fast = type(made)(**{**made.__dict__, "resubscribe_every_s": 0.01})
    source = WsSource(WsOptions(url="ws://feed", handshake=fast), None, None, lambda: 0)  # type: ignore[arg-type]
    ws = Recorder()

    async def connected_for_a_while() -> None:
        await source._start(ws)  # type: ignore[arg-type]
        async with source._resubscribing(ws):  # type: ignore[arg-type]
            await asyncio.sleep(0.2)
        sent = len(ws.sent)
        await asyncio.sleep(0.05)
        assert len(ws.sent) == sent  # nothing after the connection ended

    asyncio.run(connected_for_a_while())
    assert len(ws.sent) >= 3
    assert set(ws.sent) == {'{"subscribe":["0700.HK","600519.SS"]}'}


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["x.csv", "--yahoo", "0700.HK"], "give a FILE or --yahoo, not both"),
        (["--yahoo", "0700.HK", "--adapter", "polygon"], "--yahoo has its own adapter"),
        (["--yahoo", "0700.HK", "--symbols", "AAPL"], "--yahoo has its own adapter"),
        (["--yahoo", " , "], "--yahoo: no symbol given (e.g. --yahoo 0700.HK,600519.SS)"),
    ],
)
def test_yahoo_options_are_checked_before_kafka(
    capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    assert main(["ingest", *argv]) == 2
    assert problem in capsys.readouterr().err
