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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
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
