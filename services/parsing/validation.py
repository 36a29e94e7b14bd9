"""Turning raw tick records into ticks, or into a reason that names the field.

`TickParser` has a fast path for the plain CSV shapes (digits for ts, a plain decimal
price, a known symbol) that builds the same values the `Tick` model would, and hands
everything else to the model itself. A property test holds the two to the same answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from schemas.common import field_problems
from schemas.tick import MAX_EPOCH_MS, Tick, is_valid_symbol, parse_ts
from schemas.zones import ExchangeZones
from services.detection.timeline import to_us
from services.parsing.feed import as_mapping

_PLAIN_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,15})?").fullmatch
_KINDS = frozenset(("trade", "index"))


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a record is not a tick. `field` is None when no single field is at fault."""

    field: str | None
    detail: str


class ParsedTick(NamedTuple):
    """The values of a valid tick, without the cost of a model instance."""

    symbol: str
    ts_us: int
    price: float
    volume: int
    kind: str
    # The parsed datetime when one was built anyway; epoch-ms input never builds one.
    ts: datetime | None = None


def describe(exc: ValidationError) -> Invalid:
    parts = []
    first_field: str | None = None
    for p in field_problems(exc, with_input=True):
        if first_field is None and p.field:
            first_field = str(p.loc[0])
        if p.type == "missing":
            parts.append(f"{p.field}: missing")
        else:
            parts.append(f"{p.field}: {p.message} (got {p.input!r})" if p.field else p.message)
    return Invalid(first_field, "; ".join(parts))


def without_blank_optionals(fields: dict[str, Any]) -> dict[str, Any]:
    """CSV has no "missing": an empty volume or kind cell means the field was not given."""
    return {
        k: v
        for k, v in fields.items()
        if not (k in ("volume", "kind") and (v is None or (isinstance(v, str) and not v.strip())))
    }


# NamedTuple's generated __new__ is a Python function; tuple.__new__ skips that frame.
_new_parsed = tuple.__new__


class TickValidator:
    """Validates records with the configured exchange zones (naive times are local)."""

    def __init__(self, zones: ExchangeZones) -> None:
        self.zones = zones
        self._context = {"zones": zones}

    def validate(self, fields: dict[str, Any]) -> Tick | Invalid:
        try:
            return Tick.model_validate(without_blank_optionals(fields), context=self._context)
        except ValidationError as exc:
            return describe(exc)


class TickParser:
    """`TickValidator` with a fast path for the common shapes; same answers, far cheaper."""

    def __init__(self, zones: ExchangeZones) -> None:
        self.validator = TickValidator(zones)
        self._zones = zones
        self._symbols: set[str] = set()

    def parse(self, fields: dict[str, Any] | list[str]) -> ParsedTick | Invalid:
        """Fields as a mapping, or as the five KNOWN_COLUMNS cells of a CSV line."""
        if isinstance(fields, list):
            fast = self.fast_cells(*fields)
        else:
            fast = self._fast_mapping(fields)
        if fast is not None:
            return fast
        tick = self.validator.validate(as_mapping(fields))
        if isinstance(tick, Invalid):
            return tick
        return ParsedTick(tick.symbol, to_us(tick.ts), tick.price, tick.volume, tick.kind, tick.ts)

    def _fast_mapping(self, fields: dict[str, Any]) -> ParsedTick | None:
        if len(fields) > 5:
            return None
        cells = (
            fields.get("symbol"),
            fields.get("ts"),
            fields.get("price"),
            fields.get("volume", ""),
            fields.get("kind", ""),
        )
        if any(type(c) is not str for c in cells):
            return None
        return self.fast_cells(*cells)  # type: ignore[arg-type]

    def fast_cells(
        self, symbol: str, ts: str, price: str, volume: str, kind: str
    ) -> ParsedTick | None:
        """The fast path alone, for str cells: a tick, or None when `parse` must decide."""
        if symbol not in self._symbols:
            if not is_valid_symbol(symbol):
                return None
            self._symbols.add(symbol)
        if not _PLAIN_DECIMAL(price):
            return None
        value = float(price)  # finite: the pattern allows at most 15 + 15 digits
        if value <= 0:
            return None
        if volume == "":
            vol = 0
        elif volume.isdigit() and volume.isascii() and len(volume) < 16:
            vol = int(volume)
        else:
            return None
        if kind == "":
            kind = "trade"
        elif kind not in _KINDS:
            return None
        if ts.isdigit() and ts.isascii():
            ms = int(ts)
            if ms >= MAX_EPOCH_MS:
                return None
            return _new_parsed(ParsedTick, (symbol, ms * 1000, value, vol, kind, None))
        try:
            when = parse_ts(ts, symbol, self._zones)
        except ValueError:
            return None
        return ParsedTick(symbol, to_us(when), value, vol, kind, when)
