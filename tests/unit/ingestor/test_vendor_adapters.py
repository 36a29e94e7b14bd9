"""The built-in adapters (`--adapter polygon|alpaca`), alone and through the WebSocket
source's message path: trades become ticks, status and control messages nothing, and a
malformed element a dead letter of its own, quoting it, beside the good ones."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.dead_letter import DeadLetter
from schemas.zones import ExchangeZones
from services.cli import main
from services.ingestor.adapters import BUILT_IN
from services.ingestor.adapters.alpaca import AlpacaTrades
from services.ingestor.adapters.base import Adapter, Mapped, Rejected
from services.ingestor.adapters.polygon import PolygonTrades
from services.ingestor.screening import Accepted, Screener
from services.ingestor.symbols import SymbolMap
from services.ingestor.websocket import WsOptions, WsSource, load_adapter

NOW = datetime(2026, 2, 13, tzinfo=UTC)
T_MS = 1_770_948_000_123  # 2026-02-13T02:00:00.123Z

POLYGON_TRADE = {
    "ev": "T",
    "sym": "AAPL",
    "x": 4,
    "i": "12345",
    "z": 3,
    "p": 192.31,
    "s": 100,
    "c": [12],
    "t": T_MS,
    "q": 1234567,
}
ALPACA_TRADE = {
    "T": "t",
    "S": "AAPL",
    "i": 96921,
    "x": "D",
    "p": 126.55,
    "s": 1,
    "t": "2021-02-22T15:51:44.208123456Z",
    "c": ["@", "I"],
    "z": "C",
}


class Collect:
    def __init__(self) -> None:
        self.ticks: list[dict[str, Any]] = []
        self.dead: list[DeadLetter] = []

    def tick(self, tick: Accepted) -> None:
        self.ticks.append(json.loads(tick.value))

    def dead_letter(self, dead: DeadLetter) -> None:
        self.dead.append(dead)


def feed(adapter: Adapter) -> tuple[WsSource, Collect]:
    sink = Collect()
    screener = Screener(ExchangeZones(), 5.0, "ws://feed", lambda: NOW)
    return WsSource(WsOptions(url="ws://feed", adapter=adapter), screener, sink, lambda: 0), sink


def send(source: WsSource, message: Any) -> None:
    source.handle_message(json.dumps(message))


# -- Polygon ------------------------------------------------------------------------------


def test_polygon_trades_become_ticks() -> None:
    other = {**POLYGON_TRADE, "sym": "HK.00700", "p": 612.5, "s": 300, "t": T_MS + 1}
    items = list(PolygonTrades(SymbolMap())([POLYGON_TRADE, other]))
    assert items == [
        Mapped(
            {"symbol": "AAPL", "kind": "trade", "ts": T_MS, "price": 192.31, "volume": 100},
            POLYGON_TRADE,
        ),
        Mapped(
            {"symbol": "0700.HK", "kind": "trade", "ts": T_MS + 1, "price": 612.5, "volume": 300},
            other,
        ),
    ]
    source, sink = feed(PolygonTrades(SymbolMap()))
    send(source, [POLYGON_TRADE, other])
    assert sink.dead == []
    assert sink.ticks == [
        {
            "symbol": "AAPL",
            "ts": "2026-02-13T02:00:00.123000Z",
            "price": 192.31,
            "volume": 100,
            "kind": "trade",
        },
        {
            "symbol": "0700.HK",
            "ts": "2026-02-13T10:00:00.124000+08:00",  # in the symbol's exchange zone
            "price": 612.5,
            "volume": 300,
            "kind": "trade",
        },
    ]


def test_polygon_status_messages_are_logged_not_ticks(caplog: pytest.LogCaptureFixture) -> None:
    adapter = PolygonTrades(SymbolMap())
    with caplog.at_level(logging.INFO, "marketsignal.ingestor.polygon"):
        assert list(adapter([{"ev": "status", "status": "connected", "message": "hi"}])) == []
        assert list(adapter({"ev": "status", "status": "auth_success", "message": "ok"})) == []
        assert list(adapter([{"ev": "status", "status": "auth_failed", "message": "no"}])) == []
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert levels == [
        (logging.INFO, "Polygon status connected: hi"),
        (logging.INFO, "Polygon status auth_success: ok"),
        (logging.WARNING, "Polygon status auth_failed: no"),
    ]
    source, sink = feed(adapter)
    send(source, [{"ev": "status", "status": "success", "message": "subscribed to: T.AAPL"}])
    assert (sink.ticks, sink.dead) == ([], [])


def test_polygon_other_events_are_skipped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = PolygonTrades(SymbolMap())
    quote = {"ev": "Q", "sym": "AAPL", "bp": 192.3, "ap": 192.32, "t": T_MS}
    with caplog.at_level(logging.WARNING, "marketsignal.ingestor.polygon"):
        assert list(adapter([quote, quote, {"ev": "AM", "sym": "AAPL"}])) == []
    assert [r.getMessage() for r in caplog.records] == [
        "Polygon: 'Q' messages are not trades, skipped (only trades become ticks)",
        "Polygon: 'AM' messages are not trades, skipped (only trades become ticks)",
    ]


@pytest.mark.parametrize(
    ("element", "field", "detail"),
    [
        ({**POLYGON_TRADE, "sym": None}, "symbol", "sym: missing"),
        ({k: v for k, v in POLYGON_TRADE.items() if k != "sym"}, "symbol", "sym: missing"),
        ({**POLYGON_TRADE, "sym": 700}, "symbol", "sym: not a string (700)"),
        ({**POLYGON_TRADE, "sym": "HK.800000"}, "symbol", "HK.800000=HSI.HK"),
        ({**POLYGON_TRADE, "sym": "I:SPX"}, "symbol", "not a valid symbol"),
        ({"sym": "AAPL", "p": 1.0}, None, 'no string "ev"'),
        ("T", None, 'no string "ev"'),
    ],
)
def test_polygon_elements_that_are_no_trade_are_rejected(
    element: Any, field: str | None, detail: str
) -> None:
    [item] = PolygonTrades(SymbolMap())([element])
    assert isinstance(item, Rejected)
    assert (item.source, item.field) == (element, field)
    assert detail in item.detail


def test_polygon_message_of_the_wrong_shape_is_rejected() -> None:
    [item] = PolygonTrades(SymbolMap())(42)
    assert item == Rejected(42, None, "not a Polygon message: expected an array or an object")


def test_polygon_bad_element_is_dead_lettered_alone_quoting_it() -> None:
    """One bad element in an array: its own dead letter (the element as sent, the reason),
    and the good elements before and after it still published."""
    source, sink = feed(PolygonTrades(SymbolMap()))
    bad_price = {**POLYGON_TRADE, "p": "n/a", "t": T_MS + 1}
    unmappable = {**POLYGON_TRADE, "sym": "SH.1", "t": T_MS + 2}
    no_ts = {k: v for k, v in POLYGON_TRADE.items() if k != "t"}
    last = {**POLYGON_TRADE, "p": 193.0, "t": T_MS + 3}
    send(source, [{"ev": "status", "status": "connected"}])
    send(source, [POLYGON_TRADE, bad_price, unmappable, no_ts, last])
    assert [t["price"] for t in sink.ticks] == [192.31, 193.0]
    assert [(d.reason, d.field, d.line, json.loads(d.raw)) for d in sink.dead] == [
        ("malformed", "price", 2, bad_price),
        ("malformed", "symbol", 2, unmappable),
        ("malformed", "ts", 2, no_ts),
    ]
    assert "'SH.1': Shanghai and Shenzhen codes have 6 digits" in sink.dead[1].detail
    assert sink.dead[2].detail == "ts: missing"
    assert {d.source for d in sink.dead} == {"ws://feed"}
    assert (source.summary.read, source.summary.published) == (5, 2)
    assert source.summary.dead == {"malformed": 3}


def test_a_lone_malformed_trade_quotes_the_whole_message() -> None:
    source, sink = feed(PolygonTrades(SymbolMap()))
    message = json.dumps([{"ev": "status", "status": "x"}, {**POLYGON_TRADE, "p": -1}])
    source.handle_message(message)
    [dead] = sink.dead
    assert (dead.field, dead.raw) == ("price", message)


def test_a_resent_rejected_element_is_dead_lettered_once() -> None:
    """After a reconnect a server re-sends recent messages, bad elements included."""
    source, sink = feed(PolygonTrades(SymbolMap()))
    message = [POLYGON_TRADE, {**POLYGON_TRADE, "sym": "HK.X"}]
    send(source, message)
    source.replays.reconnected()
    send(source, message)
    assert len(sink.ticks) == 1
    assert len(sink.dead) == 1
    # a new bad element after the replay is dead-lettered as usual
    send(source, [{**POLYGON_TRADE, "sym": "HK.Y"}])
    assert len(sink.dead) == 2


def test_the_symbol_map_overrides_reach_the_adapter() -> None:
    symbols = SymbolMap({"HK.800000": "HSI.HK", "AAPL": "AAPL.US"})
    source, sink = feed(PolygonTrades(symbols))
    send(source, [{**POLYGON_TRADE, "sym": "HK.800000"}, {**POLYGON_TRADE, "t": T_MS + 5}])
    assert [t["symbol"] for t in sink.ticks] == ["HSI.HK", "AAPL.US"]


# -- Alpaca -------------------------------------------------------------------------------


def test_alpaca_trades_become_ticks_to_the_microsecond() -> None:
    other = {**ALPACA_TRADE, "S": "600519.SS", "p": 1500.0, "s": 200, "t": "2026-02-13T02:00:00Z"}
    source, sink = feed(AlpacaTrades(SymbolMap()))
    send(source, [ALPACA_TRADE, other])
    assert sink.dead == []
    assert sink.ticks == [
        {
            "symbol": "AAPL",
            "ts": "2021-02-22T15:51:44.208123Z",  # nanoseconds cut to the tick's µs
            "price": 126.55,
            "volume": 1,
            "kind": "trade",
        },
        {
            "symbol": "600519.SH",
            "ts": "2026-02-13T10:00:00+08:00",
            "price": 1500.0,
            "volume": 200,
            "kind": "trade",
        },
    ]


def test_alpaca_control_messages_are_logged_not_ticks(caplog: pytest.LogCaptureFixture) -> None:
    adapter = AlpacaTrades(SymbolMap())
    controls: list[Any] = [
        [{"T": "success", "msg": "connected"}],
        [{"T": "success", "msg": "authenticated"}],
        [{"T": "subscription", "trades": ["AAPL"], "quotes": [], "bars": []}],
        [{"T": "error", "code": 402, "msg": "auth failed"}],
    ]
    with caplog.at_level(logging.INFO, "marketsignal.ingestor.alpaca"):
        for message in controls:
            assert list(adapter(message)) == []
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "Alpaca success: {'msg': 'connected'}"),
        (logging.INFO, "Alpaca success: {'msg': 'authenticated'}"),
        (logging.INFO, "Alpaca subscription: {'trades': ['AAPL'], 'quotes': [], 'bars': []}"),
        (logging.WARNING, "Alpaca error 402: auth failed"),
    ]
    source, sink = feed(adapter)
    for message in controls:
        send(source, message)
    assert (sink.ticks, sink.dead) == ([], [])


def test_alpaca_other_types_are_skipped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quote = {"T": "q", "S": "AAPL", "bp": 126.5, "ap": 126.6, "t": ALPACA_TRADE["t"]}
    correction = {"T": "c", "S": "AAPL", "x": "D", "oi": 96921, "cp": 126.5}
    with caplog.at_level(logging.WARNING, "marketsignal.ingestor.alpaca"):
        assert list(AlpacaTrades(SymbolMap())([quote, correction, quote])) == []
    assert len(caplog.records) == 2


@pytest.mark.parametrize(
    ("element", "field", "detail"),
    [
        ({**ALPACA_TRADE, "S": None}, "symbol", "S: missing"),
        ({**ALPACA_TRADE, "S": "BTC/USD"}, "symbol", "not a valid symbol"),
        ({**ALPACA_TRADE, "t": "2021-02-22T15:51:44"}, "ts", "has no UTC offset"),
        ({**ALPACA_TRADE, "t": "yesterday"}, "ts", "is not an RFC 3339 timestamp"),
        ({**ALPACA_TRADE, "t": 1613998304208}, "ts", "not an RFC 3339 timestamp string"),
        ({"S": "AAPL", "p": 1.0}, None, 'no string "T"'),
        ([ALPACA_TRADE], None, 'no string "T"'),
    ],
)
def test_alpaca_elements_that_are_no_trade_are_rejected(
    element: Any, field: str | None, detail: str
) -> None:
    [item] = AlpacaTrades(SymbolMap())([element])
    assert isinstance(item, Rejected)
    assert (item.source, item.field) == (element, field)
    assert detail in item.detail


def test_alpaca_bad_element_is_dead_lettered_alone_quoting_it() -> None:
    source, sink = feed(AlpacaTrades(SymbolMap()))
    bad_size = {**ALPACA_TRADE, "s": -5, "t": "2021-02-22T15:51:45Z"}
    naive = {**ALPACA_TRADE, "t": "2021-02-22T15:51:46"}
    last = {**ALPACA_TRADE, "p": 127.0, "t": "2021-02-22T15:51:47Z"}
    send(source, [ALPACA_TRADE, bad_size, naive, last])
    assert [t["price"] for t in sink.ticks] == [126.55, 127.0]
    assert [(d.field, json.loads(d.raw)) for d in sink.dead] == [
        ("volume", bad_size),
        ("ts", naive),
    ]


# -- by name ------------------------------------------------------------------------------


def test_built_in_adapters_load_by_name() -> None:
    assert isinstance(load_adapter("polygon"), PolygonTrades)
    assert isinstance(load_adapter("alpaca", SymbolMap({"X": "Y"})), AlpacaTrades)
    with pytest.raises(ValueError, match=r"'futu' is not a built-in one \(polygon, alpaca\)"):
        load_adapter("futu")


def test_ingest_help_lists_the_built_in_adapters(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "polygon: Polygon.io/Massive stock trades; alpaca: Alpaca stock trades" in text
    assert set(BUILT_IN) == {"polygon", "alpaca"}


def test_symbol_map_needs_a_built_in_adapter(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ingest", "--ws", "ws://feed", "--adapter", "m:f", "--symbol-map", "x.txt"])
    assert code == 2
    assert "--symbol-map applies to a built-in adapter" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--adapter", "polgon"], "'polgon' is not a built-in one (polygon, alpaca)"),
        (["--adapter", "no_such_module_here:f"], "No module named 'no_such_module_here'"),
        (["--adapter", "polygon", "--symbol-map", "{missing}"], "--symbol-map {missing}"),
        (["--adapter", "alpaca", "--symbol-map", "{bad}"], "{bad}:2: expected source=canonical"),
    ],
)
def test_a_bad_adapter_or_symbol_map_stops_ingest_before_kafka(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    """Exit 2 with the reason, before any broker is dialled (none runs in unit tests)."""
    bad = tmp_path / "bad.txt"
    bad.write_text("HK.800000=HSI.HK\nHK.800700 HSTECH.HK\n")
    paths = {"missing": str(tmp_path / "missing.txt"), "bad": str(bad)}
    argv = [arg.format(**paths) for arg in argv]
    assert main(["ingest", "--ws", "ws://127.0.0.1:9/feed", *argv]) == 2
    assert problem.format(**paths) in capsys.readouterr().err
