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
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from services.ingestor.adapters.base import (
    Item,
    Mapped,
    Rejected,
    SkippedEvents,
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
