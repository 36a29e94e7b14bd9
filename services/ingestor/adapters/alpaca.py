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

Logging in (https://docs.alpaca.markets/docs/streaming-market-data, "Authentication"):
after the `[{"T":"success","msg":"connected"}]` welcome, send
`{"action":"auth","key":"<key id>","secret":"<secret key>"}` within 10 s; the answer is
`[{"T":"success","msg":"authenticated"}]` or an error such as
`[{"T":"error","code":402,"msg":"auth failed"}]`; then
`{"action":"subscribe","trades":["AAPL","MSFT"]}`. Errors 402 (auth failed) and 409
(insufficient subscription: a feed the plan does not include; the official client,
alpacahq/alpaca-py alpaca/data/live/websocket.py, gives up on it too) will not pass on a
retry; any other (406 connection limit exceeded, which a previous connection not yet
closed on the server's side causes, 404 auth timeout, 500) may, after a backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
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

log = logging.getLogger("marketsignal.ingestor.alpaca")

VENDOR = "Alpaca"
# Login errors a retry cannot fix: auth failed, insufficient subscription.
_REFUSALS = frozenset((402, 409))


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


def auth_message(key_id: str, secret_key: str) -> str:
    """The login message; it holds the keys, so it is sent and never logged."""
    return orjson.dumps({"action": "auth", "key": key_id, "secret": secret_key}).decode()


def subscribe_message(symbols: Sequence[str]) -> str:
    """Trades of each symbol, Alpaca's spelling; `*` is every symbol."""
    return orjson.dumps({"action": "subscribe", "trades": list(symbols)}).decode()


def login_reply(message: Any) -> Reply:
    """A decoded message read while logging in: DONE on success "authenticated", an error
    REFUSED (402, 409) or RETRY (any other code), otherwise WAIT (the welcome...)."""
    for element in control_elements(message, "T"):
        kind = element["T"]
        if kind == "success" and element.get("msg") == "authenticated":
            return Reply(Outcome.DONE, "authenticated")
        if kind == "error":
            code, text = element.get("code"), element.get("msg")
            outcome = Outcome.REFUSED if code in _REFUSALS else Outcome.RETRY
            return Reply(outcome, f"error {code}: {text}")
    return Reply(Outcome.WAIT)


def handshake(
    keys: tuple[str, str] | None, symbols: Sequence[str], credentials: str = ""
) -> Handshake:
    """Log in with `keys` (key id, secret key; None: don't), then subscribe to the trades
    of `symbols`."""
    return Handshake(
        vendor=VENDOR,
        auth=None if keys is None else auth_message(*keys),
        classify=login_reply,
        subscribe=(subscribe_message(symbols),) if symbols else (),
        credentials=credentials,
    )
