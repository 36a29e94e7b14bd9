"""Tick: one observation of a price, the input of every detector."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from schemas.zones import DEFAULT_EXCHANGE_ZONES, ExchangeZones

SYMBOL_PATTERN = r"^[A-Za-z0-9.^_-]{1,32}$"
_SYMBOL_RE = re.compile(r"[A-Za-z0-9.^_-]{1,32}")  # fullmatch: "$" would allow a final "\n"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Years outside this range are almost certainly a seconds/microseconds mix-up in the feed.
_MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TS = datetime(2200, 1, 1, tzinfo=UTC)

TickKind = Literal["trade", "index"]


def zones_from(info: ValidationInfo) -> ExchangeZones:
    ctx = info.context
    if isinstance(ctx, dict):
        zones = ctx.get("zones")
        if isinstance(zones, ExchangeZones):
            return zones
    return DEFAULT_EXCHANGE_ZONES


def parse_ts(value: Any, symbol: str | None, zones: ExchangeZones) -> datetime:
    """Parse a tick timestamp per the contract and express it in the symbol's exchange zone.

    Accepts an aware or naive ISO-8601 string (naive means exchange-local time), a
    datetime, or integer epoch milliseconds (an int, or a string of digits as CSV has it).
    """
    zone = zones.zone_for(symbol) if symbol else UTC
    if isinstance(value, str):
        if value.isdigit() and value.isascii():  # the common CSV case first: once per tick
            return _from_epoch_ms(int(value), zone)
        text = value.strip()
        if not text:
            raise ValueError("is empty")
        if text.isascii() and text.isdigit():
            return _from_epoch_ms(int(text), zone)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{text[:40]!r} is neither ISO-8601 nor integer epoch milliseconds"
            ) from None
        value = parsed
    elif isinstance(value, bool):
        raise ValueError("must be ISO-8601 or integer epoch milliseconds, not a boolean")
    elif isinstance(value, int):
        return _from_epoch_ms(value, zone)
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError("epoch milliseconds must be a whole number")
        return _from_epoch_ms(int(value), zone)
    if isinstance(value, datetime):
        when: datetime = value
        if when.tzinfo is None or when.utcoffset() is None:
            when = when.replace(tzinfo=zone)
        if not _MIN_TS <= when < _MAX_TS:
            raise ValueError(f"{when.isoformat()} is outside 1970..2199")
        return when.astimezone(zone)
    raise ValueError("must be ISO-8601 or integer epoch milliseconds")


MAX_EPOCH_MS = (_MAX_TS - _EPOCH) // timedelta(milliseconds=1)


def _from_epoch_ms(ms: int, zone: Any) -> datetime:
    if ms < 0:
        raise ValueError("epoch milliseconds must not be negative")
    if ms >= MAX_EPOCH_MS:
        raise ValueError(f"epoch milliseconds {ms} is after 2199 (seconds or microseconds?)")
    # Integer arithmetic, not fromtimestamp(ms / 1000): no float rounding anywhere.
    return datetime.fromtimestamp(ms // 1000, zone).replace(microsecond=(ms % 1000) * 1000)


class Tick(BaseModel):
    """A validated tick. `ts` is always timezone-aware, in the symbol's exchange zone."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    symbol: Annotated[str, Field(min_length=1, max_length=32, pattern=SYMBOL_PATTERN)]
    ts: datetime
    price: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    volume: Annotated[int, Field(ge=0)] = 0
    kind: TickKind = "trade"

    @field_validator("price", "volume", mode="before")
    @classmethod
    def _not_boolean(cls, value: Any) -> Any:
        # pydantic's lax mode reads true as 1: a JSON `"price": true` is malformed, not 1.0.
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_ts(cls, value: Any, info: ValidationInfo) -> datetime:
        symbol = info.data.get("symbol")
        return parse_ts(value, symbol if isinstance(symbol, str) else None, zones_from(info))


def is_valid_symbol(symbol: str) -> bool:
    return _SYMBOL_RE.fullmatch(symbol) is not None
