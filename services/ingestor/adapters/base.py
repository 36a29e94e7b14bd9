"""What an adapter hands the WebSocket source, and what the built-in ones share.

An adapter maps one decoded JSON message to an iterable of items, each one of:

- a mapping: the tick's fields (`symbol`, `ts`, `price`, optional `volume`, `kind`),
  validated like a file line; the shape user adapters (`--adapter module:function`)
  return;
- `Mapped`: the same, with the element of the message it came from, which a dead letter
  then quotes as the source sent it instead of the mapped fields;
- `Rejected`: an element that is no tick (unknown shape, unmappable symbol): dead-lettered
  on its own with the reason, while the other elements of the same message go on.

An adapter that raises dead-letters the whole message.

A built-in adapter also knows its vendor's `Handshake`: the messages that log in and
subscribe on each connection, and how to read the replies to the login. Those parts are
pure (text in, text or a `Reply` out); services/ingestor/websocket.py does the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from services.ingestor.symbols import SymbolMap, UnmappableSymbolError

_SKIPPED_KINDS_MAX = 64


@dataclass(frozen=True, slots=True)
class Mapped:
    """A tick's fields, and the element of the source's message they were mapped from."""

    fields: dict[str, Any]
    source: Any


@dataclass(frozen=True, slots=True)
class Rejected:
    """An element of a source's message that is no tick: why, and the tick field at fault."""

    source: Any
    field: str | None
    detail: str


Item = Mapping[str, Any] | Mapped | Rejected
Adapter = Callable[[Any], Iterable[Item]]


class Outcome(Enum):
    """What a reply to the login means."""

    WAIT = "wait"  # not the answer yet (the welcome message, anything else): read on
    DONE = "done"  # logged in: subscribe, then the messages are data
    REFUSED = "refused"  # the credentials are wrong: retrying will not fix them
    RETRY = "retry"  # refused for now (a connection limit, a server error): reconnect


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded message read while logging in, classified; `detail` says why, for a log."""

    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True)
class Handshake:
    """What a built-in adapter sends on each connection before reading data.

    `auth` (None: no login, e.g. behind a relay that holds the credentials) is sent first,
    then messages are read and `classify`d until one is DONE, within the login timeout;
    then each `subscribe` message is sent (and again every `resubscribe_every_s`, if
    set, while the connection lasts). `auth` holds the credentials: kept out of
    repr(), so no log or traceback that shows the options shows them.
    """

    vendor: str
    auth: str | None = field(repr=False)
    classify: Callable[[Any], Reply]
    subscribe: tuple[str, ...] = ()
    # The settings that hold the credentials, named in a refusal: what the user fixes.
    credentials: str = ""
    # Send `subscribe` again this often while connected (None: once per connection):
    # Yahoo's streamer, as yfinance's client keeps it subscribed.
    resubscribe_every_s: float | None = None


class LoginRefusedError(Exception):
    """The feed refused the credentials: the message says which vendor, why, and what to set."""


class LoginFailedError(Exception):
    """The feed refused the login for now (a connection limit, a server error): reconnect."""


def parse_symbols(
    text: str, option: str = "--symbols", example: str = "AAPL,MSFT"
) -> tuple[str, ...]:
    """`--symbols AAPL,MSFT`: the vendor's spelling, comma-separated, each once, in order;
    ValueError if there is none or one holds a space (a vendor would refuse it later,
    less clearly)."""
    symbols: dict[str, None] = {}
    for part in text.split(","):
        symbol = part.strip()
        if not symbol:
            continue
        if any(c.isspace() for c in symbol):
            raise ValueError(f"{option}: {symbol!r} holds a space")
        symbols[symbol] = None
    if not symbols:
        raise ValueError(f"{option}: no symbol given (e.g. {option} {example})")
    return tuple(symbols)


def control_elements(message: Any, type_key: str) -> Iterator[dict[str, Any]]:
    """The elements of a message that are objects with a string `type_key`: the vendors'
    control messages come in arrays too, alone or beside others."""
    for element in message if isinstance(message, list) else (message,):
        if isinstance(element, dict) and isinstance(element.get(type_key), str):
            yield element


def elements(message: Any, vendor: str) -> Iterator[Any]:
    """The elements of a message: the vendors send arrays, a bare object is one element."""
    if isinstance(message, list):
        yield from message
    elif isinstance(message, dict):
        yield message
    else:
        yield Rejected(message, None, f"not a {vendor} message: expected an array or an object")


def symbol_of(element: Mapping[str, Any], key: str, symbols: SymbolMap) -> str | Rejected:
    """The canonical symbol of the element's `key`, or why there is none."""
    value = element.get(key)
    if not isinstance(value, str):
        detail = f"{key}: missing" if value is None else f"{key}: not a string ({value!r})"
        return Rejected(element, "symbol", detail)
    try:
        return symbols.canonical(value)
    except UnmappableSymbolError as exc:
        return Rejected(element, "symbol", str(exc))


def copy_if_present(element: Mapping[str, Any], fields: dict[str, Any], **names: str) -> None:
    """fields[tick_name] = element[source_key] for each present key: an absent one is then
    reported by validation as the tick field that is missing."""
    for tick_name, key in names.items():
        if key in element:
            fields[tick_name] = element[key]


class SkippedEvents:
    """Logs each kind of non-trade event once: a feed subscribed to quotes or bars
    would otherwise deliver nothing, silently."""

    def __init__(self, vendor: str, log: logging.Logger) -> None:
        self.vendor = vendor
        self.log = log
        self.seen: set[str] = set()

    def skip(self, event: str) -> None:
        # Bounded: a feed sending ever new event names must not grow this for ever.
        if event not in self.seen and len(self.seen) < _SKIPPED_KINDS_MAX:
            self.seen.add(event)
            self.log.warning(
                "%s: %r messages are not trades, skipped (only trades become ticks)",
                self.vendor,
                event,
            )
