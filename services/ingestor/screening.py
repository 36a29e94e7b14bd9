"""Deciding, line by line, whether a feed record is a tick to publish or a dead letter.

Pure logic: no Kafka here, so the rules are tested without a broker. The lateness rule is
the detectors' own (docs/signals.md, "Ordering"); the processor checks again, but
rejecting early keeps late ticks off `ticks` and names their file line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from schemas.dead_letter import DeadLetter, DeadLetterReason
from schemas.tick import is_valid_symbol
from schemas.tick_codec import TickJson
from schemas.zones import ExchangeZones
from services.detection.timeline import US_PER_S, from_us
from services.parsing.feed import RawRecord, as_mapping
from services.parsing.validation import Invalid, TickParser


class Accepted(NamedTuple):
    """A valid tick as it goes on the wire: no model instance on the hot path."""

    symbol: str
    ts_us: int
    value: bytes  # the canonical tick JSON, equal to `Tick.model_dump_json()`


# NamedTuple's generated __new__ is a Python function; tuple.__new__ skips that frame.
_new_accepted = tuple.__new__


def _symbol_of(fields: dict[str, Any] | list[str] | None) -> str | None:
    """The record's symbol when it is a usable one, for the dead letter's key and field."""
    if fields is None:
        return None
    value = as_mapping(fields).get("symbol")
    return value if isinstance(value, str) and is_valid_symbol(value) else None


class Screener:
    """Turns records into `Accepted` ticks or `DeadLetter`s; remembers each symbol's newest ts."""

    def __init__(
        self,
        zones: ExchangeZones,
        allowed_lateness_s: float,
        source: str,
        now: Callable[[], datetime],
    ) -> None:
        self.zones = zones
        self.parser = TickParser(zones)
        self._fast_cells = self.parser.fast_cells
        self.encode = TickJson(zones).encode
        self.allowed_lateness_s = allowed_lateness_s
        # Rounded like the detectors' RecordHighConfig so both draw the line at the same µs.
        self.lateness_us = round(allowed_lateness_s * US_PER_S)
        self.source = source
        self.now = now
        self.latest_us: dict[str, int] = {}

    def screen(self, record: RawRecord) -> Accepted | DeadLetter:
        if record.fields is None:
            return self._dead(record, "malformed", None, record.error or "unreadable line")
        fields = record.fields
        # The CSV fast path first, straight: the common case of a replay, once a line.
        parsed = (self._fast_cells(*fields) if type(fields) is list else None) or self.parser.parse(
            fields
        )
        if isinstance(parsed, Invalid):
            return self._dead(
                record, "malformed", parsed.field, parsed.detail, _symbol_of(record.fields)
            )
        symbol, ts_us, price, volume, kind, ts = parsed
        latest = self.latest_us.get(symbol)
        if latest is not None and ts_us < latest - self.lateness_us:
            zone = self.zones.zone_for(symbol)
            detail = (
                f"ts is {(latest - ts_us) / US_PER_S:g}s before the latest accepted ts "
                f"{from_us(latest, zone).isoformat()} of this symbol "
                f"(allowed lateness {self.allowed_lateness_s:g}s)"
            )
            return self._dead(record, "late", "ts", detail, symbol)
        if latest is None or ts_us > latest:
            self.latest_us[symbol] = ts_us
        # Every value was validated by the parser: encoded as the model would dump them.
        value = self.encode(symbol, ts_us, price, volume, kind, ts)
        return _new_accepted(Accepted, (symbol, ts_us, value))

    def rejected(self, record: RawRecord, field: str | None, detail: str) -> DeadLetter:
        """A malformed dead letter for a record an adapter refused before validation."""
        return self._dead(record, "malformed", field, detail)

    def _dead(
        self,
        record: RawRecord,
        reason: DeadLetterReason,
        field: str | None,
        detail: str,
        symbol: str | None = None,
    ) -> DeadLetter:
        return DeadLetter(
            reason=reason,
            field=field,
            detail=detail,
            raw=record.raw,
            source=self.source,
            line=record.line,
            symbol=symbol,
            received_at=self.now(),
        )
