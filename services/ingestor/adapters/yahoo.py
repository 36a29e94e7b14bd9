"""`ingest --yahoo 0700.HK,600519.SS`: Yahoo Finance's streamer, as yfinance reads it.

yfinance's WebSocket client (yfinance/live.py, `AsyncWebSocket`) connects to
`wss://streamer.finance.yahoo.com/?version=2`, sends `{"subscribe": ["0700.HK", ...]}`
and sends it again every 15 seconds while connected (its "heartbeat subscription").
Each message is JSON whose `message` field is a base64 protobuf `PricingData`
(yfinance/pricing.proto, decoded with yfinance's generated pricing_pb2 and
`MessageToDict(..., preserving_proto_field_name=True)`):

    {"type": "pricing", "message": "CgcwNzAwLkhLFZoZ+EMYgJDFw4NnSPYB"}
    -> {"id": "0700.HK", "price": 496.2, "time": "1770000000000", "quote_type": 8,
        "market_hours": 1, "day_volume": "12345600", "price_hint": "2", ...}

A PricingData is a snapshot of the listing (last price, the day's cumulative volume), not
a trade: it becomes a tick by the snapshot rule (services/ingestor/snapshots.py), only
when its price or `day_volume` changed, with the volume's increase as the tick's volume.
symbol = `id` through the symbol map (600519.SS -> 600519.SH), ts = `time` (Unix epoch
milliseconds), price = `price` (a protobuf float: MessageToDict gives its shortest
decimal, 496.2 rather than 496.20001220703125), kind "index" for `quote_type` 9 (INDEX
in Yahoo's own enum: NONE 0, EQUITY 8, INDEX 9, ETF 20, ...), otherwise "trade".

A message that is no pricing data (not JSON with a base64 `message` that decodes), an
`id` with no canonical form, or a price that is no number > 0, is dead-lettered with the
message as Yahoo sent it; another `type` without a `message` is skipped, logged once.
The decoding itself is yfinance's (`protobuf_decoder`): this module's logic is pure.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from services.ingestor.adapters.base import (
    Handshake,
    Item,
    Mapped,
    Outcome,
    Rejected,
    Reply,
    SkippedEvents,
    symbol_of,
)
from services.ingestor.extras import require
from services.ingestor.snapshots import Snapshot, SnapshotTrades, problem
from services.ingestor.symbols import SymbolMap

log = logging.getLogger("marketsignal.ingestor.yahoo")

VENDOR = "Yahoo"
STREAMER_URL = "wss://streamer.finance.yahoo.com/?version=2"
# yfinance's client re-sends its subscription this often (live.py, _subscription_interval).
RESUBSCRIBE_EVERY_S = 15.0
_INDEX = 9  # PricingData.quote_type of an index

# A base64 text -> the PricingData it holds, as MessageToDict gives it.
Decode = Callable[[str], dict[str, Any]]


def protobuf_decoder() -> Decode:
    """yfinance's own PricingData class and protobuf's MessageToDict, as yfinance's
    `BaseWebSocket._decode_message` uses them; MissingExtraError without the extra."""
    pricing = require("yfinance.pricing_pb2", "yahoo", "--yahoo")
    json_format = require("google.protobuf.json_format", "yahoo", "--yahoo")

    def decode(encoded: str) -> dict[str, Any]:
        data = pricing.PricingData()
        data.ParseFromString(base64.b64decode(encoded, validate=True))
        return dict(json_format.MessageToDict(data, preserving_proto_field_name=True))

    return decode


class YahooPricing:
    """The adapter: a decoded streamer message -> a tick when the listing's state changed."""

    def __init__(self, symbols: SymbolMap, decode: Decode) -> None:
        self.symbols = symbols
        self.decode = decode
        self.trades = SnapshotTrades()
        self.skipped = SkippedEvents(VENDOR, log)

    def __call__(self, message: Any) -> Iterator[Item]:
        if not isinstance(message, dict):
            yield Rejected(message, None, "not a Yahoo message: expected a JSON object")
            return
        encoded = message.get("message")
        if encoded is None:
            kind = message.get("type")
            if isinstance(kind, str) and kind != "pricing":
                self.skipped.skip(kind)
            else:
                yield Rejected(message, None, 'not a Yahoo pricing message: no "message"')
            return
        if not isinstance(encoded, str):
            yield Rejected(message, None, f"message: not base64 text ({encoded!r:.64})")
            return
        try:
            data = self.decode(encoded)
        except Exception as exc:  # binascii, protobuf's DecodeError: the message is at fault
            yield Rejected(message, None, f"message: not a base64 PricingData ({exc})")
            return
        item = self._snapshot(message, data)
        if item is not None:
            yield item

    def _snapshot(self, message: dict[str, Any], data: dict[str, Any]) -> Item | None:
        symbol = symbol_of(data, "id", self.symbols)
        if isinstance(symbol, Rejected):
            return Rejected(message, symbol.field, symbol.detail)
        # MessageToDict leaves out fields at their default (0) and gives 64-bit ints as text.
        time_ms = _int64(data.get("time", 0))
        if not time_ms:
            return Rejected(message, "ts", f"time: missing or not epoch milliseconds ({data})")
        volume = _int64(data.get("day_volume", 0))
        snapshot = Snapshot(
            symbol=symbol,
            ts=time_ms,
            price=data.get("price", 0),
            volume=-1 if volume is None else volume,
            kind="index" if data.get("quote_type") == _INDEX else "trade",
        )
        wrong = problem(snapshot)
        if wrong is not None:
            return Rejected(message, wrong[0], f"{wrong[1]} ({data})")
        fields = self.trades.trade(snapshot)
        return None if fields is None else Mapped(fields, message)


def _int64(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def subscribe_message(symbols: Sequence[str]) -> str:
    return orjson.dumps({"subscribe": list(symbols)}).decode()


def _no_login(_message: Any) -> Reply:
    return Reply(Outcome.DONE)  # never asked: the streamer has no login


def handshake(symbols: Sequence[str]) -> Handshake:
    """No login; subscribe to `symbols` (Yahoo's spelling) on each connection and again
    every RESUBSCRIBE_EVERY_S while it lasts, as yfinance does."""
    return Handshake(
        vendor=VENDOR,
        auth=None,
        classify=_no_login,
        subscribe=(subscribe_message(symbols),),
        resubscribe_every_s=RESUBSCRIBE_EVERY_S,
    )
