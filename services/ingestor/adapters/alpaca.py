"""`--adapter alpaca`: Alpaca's market-data stream (stocks, v2).

Messages are JSON arrays of objects, each with its type in `T`
(https://docs.alpaca.markets/docs/real-time-stock-pricing-data, "Trades"; control
messages: https://docs.alpaca.markets/docs/streaming-market-data):

    [{"T": "t", "S": "AAPL", "i": 96921, "x": "D", "p": 126.55, "s": 1,
      "t": "2021-02-22T15:51:44.208Z", "c": ["@", "I"], "z": "C"}]

A trade (`T` "t") becomes the tick symbol = `S` through the symbol map, ts = `t` (an
RFC 3339 timestamp with up to nanoseconds: kept to the microsecond, the tick's
resolution, the rest dropped), price = `p`, volume = `s` (shares), kind "trade".
Control messages (`success`, `subscription`, `error`) are logged, an error as a warning,
and carry no tick; any other type (quotes "q", bars "b", corrections "c", cancels "x",
...) is skipped, logged once per type. An element that is not an object with a string
`T`, a trade whose `t` is no timestamp with an offset, or whose symbol has no canonical
form, is dead-lettered on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
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

log = logging.getLogger("marketsignal.ingestor.alpaca")

VENDOR = "Alpaca"


class AlpacaTrades:
    """The adapter: a decoded Alpaca message -> its trades as ticks."""

    def __init__(self, symbols: SymbolMap) -> None:
        self.symbols = symbols
        self.skipped = SkippedEvents(VENDOR, log)

    def __call__(self, message: Any) -> Iterator[Item]:
        for element in elements(message, VENDOR):
            if isinstance(element, Rejected):
                yield element
                continue
            kind = element.get("T") if isinstance(element, dict) else None
            if not isinstance(kind, str):
                yield Rejected(element, None, 'not an Alpaca message: no string "T"')
            elif kind == "t":
                yield self._trade(element)
            elif kind in ("success", "subscription"):
                log.info("Alpaca %s: %s", kind, _control_text(element))
            elif kind == "error":
                log.warning("Alpaca error %s: %s", element.get("code"), element.get("msg"))
            else:
                self.skipped.skip(kind)

    def _trade(self, element: dict[str, Any]) -> Item:
        symbol = symbol_of(element, "S", self.symbols)
        if isinstance(symbol, Rejected):
            return symbol
        fields: dict[str, Any] = {"symbol": symbol, "kind": "trade"}
        copy_if_present(element, fields, price="p", volume="s")
        if "t" in element:
            ts = rfc3339(element["t"])
            if isinstance(ts, str):
                return Rejected(element, "ts", ts)
            fields["ts"] = ts.isoformat()
        return Mapped(fields, element)


def rfc3339(value: Any) -> datetime | str:
    """An RFC 3339 timestamp (`Z` or an offset, up to nanoseconds) as an aware datetime
    to the microsecond, or why not. Python reads more than six fraction digits, dropping
    the rest, since 3.11."""
    if not isinstance(value, str):
        return f"t: not an RFC 3339 timestamp string ({value!r})"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return f"t: {value[:64]!r} is not an RFC 3339 timestamp"
    if when.utcoffset() is None:
        return f"t: {value[:64]!r} has no UTC offset (RFC 3339 requires one)"
    return when


def _control_text(element: dict[str, Any]) -> str:
    rest = {k: v for k, v in element.items() if k != "T"}
    return str(rest)
