"""`--adapter polygon`: Polygon.io's (now Massive's) stocks WebSocket.

Messages are JSON arrays of events, each an object with its type in `ev`
(https://massive.com/docs/websocket/stocks/trades; the fields as the official client
reads them: polygon-io/client-python, polygon/websocket/models/models.py, EquityTrade):

    [{"ev": "T", "sym": "AAPL", "x": 4, "i": "12345", "z": 3, "p": 192.31, "s": 100,
      "c": [12], "t": 1748476801234, "q": 1234567}]

A trade (`ev` "T") becomes the tick symbol = `sym` through the symbol map, ts = `t`
(Unix epoch milliseconds, UTC), price = `p`, volume = `s` (shares), kind "trade".
`{"ev": "status", ...}` messages (connected, auth_success, success, auth_failed, ...)
are logged, a failure as a warning, and carry no tick; any other event type (quotes "Q",
aggregates "A"/"AM", ...) is skipped, logged once per type. An element that is not an
object with a string `ev`, or a trade whose symbol has no canonical form, is
dead-lettered on its own.

Logging in (https://massive.com/docs/websocket/quickstart): after connecting, send
`{"action":"auth","params":"<API key>"}`; the answer is a status `auth_success` (or
`auth_failed`, which the official Go client, polygon-io/client-go websocket/polygon.go,
treats as fatal); then `{"action":"subscribe","params":"T.AAPL,T.MSFT"}`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
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
    control_elements,
    copy_if_present,
    elements,
    symbol_of,
)
from services.ingestor.symbols import SymbolMap

log = logging.getLogger("marketsignal.ingestor.polygon")

VENDOR = "Polygon"
# Status values that are the normal course of a session; any other is worth a warning.
_FINE_STATUSES = frozenset(("connected", "auth_success", "success"))


class PolygonTrades:
    """The adapter: a decoded Polygon message -> its trades as ticks."""

    def __init__(self, symbols: SymbolMap) -> None:
        self.symbols = symbols
        self.skipped = SkippedEvents(VENDOR, log)

    def __call__(self, message: Any) -> Iterator[Item]:
        for element in elements(message, VENDOR):
            if isinstance(element, Rejected):
                yield element
                continue
            event = element.get("ev") if isinstance(element, dict) else None
            if not isinstance(event, str):
                yield Rejected(element, None, 'not a Polygon event: no string "ev"')
            elif event == "T":
                yield self._trade(element)
            elif event == "status":
                _log_status(element)
            else:
                self.skipped.skip(event)

    def _trade(self, element: dict[str, Any]) -> Item:
        symbol = symbol_of(element, "sym", self.symbols)
        if isinstance(symbol, Rejected):
            return symbol
        fields: dict[str, Any] = {"symbol": symbol, "kind": "trade"}
        copy_if_present(element, fields, ts="t", price="p", volume="s")
        return Mapped(fields, element)


def _log_status(element: dict[str, Any]) -> None:
    status, text = element.get("status"), element.get("message")
    level = logging.INFO if status in _FINE_STATUSES else logging.WARNING
    log.log(level, "Polygon status %s: %s", status, text)


def auth_message(api_key: str) -> str:
    """The login message; it holds the key, so it is sent and never logged."""
    return orjson.dumps({"action": "auth", "params": api_key}).decode()


def subscribe_message(symbols: Sequence[str]) -> str:
    """Trades (`T.`) of each symbol, Polygon's spelling; `*` is every symbol."""
    return orjson.dumps(
        {"action": "subscribe", "params": ",".join(f"T.{s}" for s in symbols)}
    ).decode()


def login_reply(message: Any) -> Reply:
    """A decoded message read while logging in: DONE on `auth_success` (or the older
    `success` "authenticated", https://polygon.io/sockets), REFUSED on `auth_failed`,
    otherwise WAIT (the `connected` welcome, anything else)."""
    for element in control_elements(message, "ev"):
        if element["ev"] != "status":
            continue
        status, text = element.get("status"), element.get("message")
        if status == "auth_success" or (status == "success" and text == "authenticated"):
            return Reply(Outcome.DONE, str(text))
        if status == "auth_failed":
            return Reply(Outcome.REFUSED, f"{status}: {text}")
    return Reply(Outcome.WAIT)


def handshake(api_key: str | None, symbols: Sequence[str], credentials: str = "") -> Handshake:
    """Log in with `api_key` (None: don't), then subscribe to the trades of `symbols`."""
    return Handshake(
        vendor=VENDOR,
        auth=None if api_key is None else auth_message(api_key),
        classify=login_reply,
        subscribe=(subscribe_message(symbols),) if symbols else (),
        credentials=credentials,
    )
