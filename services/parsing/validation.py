"""Turning raw tick records into ticks, or into a reason that names the field.

`TickParser` takes the tick codec's fast path for the plain CSV shapes
(`schemas.tick_codec.TickCells`) and hands everything else to the `Tick` model itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.common import field_problems
from schemas.tick import Tick
from schemas.tick_codec import ParsedTick, TickCells
from schemas.zones import ExchangeZones
from services.detection.timeline import to_us
from services.parsing.feed import as_mapping


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a record is not a tick. `field` is None when no single field is at fault."""

    field: str | None
    detail: str


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
        # The codec's own method, bound: callers' loops call it with no layer between.
        self.fast_cells = TickCells(zones).fast_cells

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
