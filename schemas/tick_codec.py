"""The tick's wire forms without a `Tick` model: its canonical JSON, and its fast paths.

Each answers exactly as the model (`schemas.tick`) does for the shapes it takes on, and
leaves every other input to the model; property tests hold them to it. They exist
because a pydantic model per tick would be most of the ingestor's, the processor's and
the backtest's time: each is called once per tick, straight from its caller's loop.

- `TickJson` encodes validated values as the canonical JSON (what `Tick.model_dump_json`
  gives), the form the ingestor sends. The timestamp string is assembled from cached
  parts: the local hour's "YYYY-MM-DDTHH", the second's ":MM:SS", the fraction, and the
  zone's offset ("Z" when it is zero, as pydantic writes it). orjson writes the object,
  its floats as pydantic does.
- `FastTicks` reads a tick as our own services write it (the canonical JSON, already
  decoded by orjson) into (symbol, ts_us, price). Anything else (other types, naive or
  odd timestamps, missing fields) is None: the model judges it, and names the bad field.
- `TickCells` reads the plain CSV shapes (digits for ts, a plain decimal price, a known
  symbol) into the values the model would build (`ParsedTick`).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, tzinfo
from typing import Any, NamedTuple

import orjson

from schemas.tick import MAX_EPOCH_MS, is_valid_symbol, parse_ts
from schemas.timeline import US_PER_S, ZoneClock, to_us
from schemas.zones import ExchangeZones

_KINDS = frozenset(("trade", "index"))

# -- the canonical JSON -----------------------------------------------------------------

_EPOCH_NAIVE = datetime(1970, 1, 1)
_US_PER_HOUR = 3600 * US_PER_S
# Every UTC offset change since 1970 falls on a quarter hour of UTC (as ZoneClock relies
# on), and most offsets are whole quarter hours: then a UTC quarter hour is one local
# quarter hour, inside one local hour, with one offset text.
_QUARTER_US = 900 * US_PER_S
_MAX_CACHED_HOURS = 4096
# ":MM:SS" of each second of an hour, by index.
_MINUTE_SECOND = [f":{m:02d}:{s:02d}" for m in range(60) for s in range(60)]
# ".mmm000" of each whole millisecond, "" for none (pydantic writes no fraction then).
_MILLIS = ["", *(f".{ms:03d}000" for ms in range(1, 1000))]


def offset_text(offset_us: int) -> str:
    """A UTC offset as pydantic writes it: "Z" for zero, seconds dropped (Monrovia's
    -00:44:30 before 1972 is "-00:44")."""
    if offset_us == 0:
        return "Z"
    sign = "+" if offset_us > 0 else "-"
    hours, minutes = divmod(abs(offset_us) // (60 * US_PER_S), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


class _Zone:
    __slots__ = ("clock", "hour_start_us", "hours", "offsets", "quarter", "texts")

    def __init__(self, zone: tzinfo) -> None:
        self.clock = ZoneClock(zone)
        # The last UTC quarter hour seen, with its local hour's start (UTC epoch us) and
        # its "YYYY-MM-DDTHH" and offset text: most ticks follow the one before.
        self.quarter = -(2**62)
        self.hour_start_us = 0
        self.texts = ("", "")
        self.offsets: dict[int, str] = {}
        # Local epoch hour -> its "YYYY-MM-DDTHH": a replay's ticks share hours.
        self.hours: dict[int, str] = {}


class TickJson:
    """Encodes validated tick values; a symbol's exchange zone gives its `ts` offset."""

    def __init__(self, zones: ExchangeZones) -> None:
        self.zones = zones
        self._by_zone: dict[tzinfo, _Zone] = {}
        self._by_symbol: dict[str, _Zone] = {}

    def encode(
        self,
        symbol: str,
        ts_us: int,
        price: float,
        volume: int,
        kind: str,
        ts: datetime | None = None,
    ) -> bytes:
        """`ts`: the datetime the tick was validated with, when one was built (ISO input).
        It is written as is, so a naive local time in a daylight-saving gap keeps the
        offset the model gave it (the same instant as `ts_us`, as the model dumps it)."""
        return orjson.dumps(
            {
                "symbol": symbol,
                "ts": self.ts_text(symbol, ts_us) if ts is None else datetime_text(ts),
                "price": price,
                "volume": volume,
                "kind": kind,
            }
        )

    def ts_text(self, symbol: str, ts_us: int) -> str:
        """The tick's `ts` in its symbol's exchange zone, as pydantic serialises it."""
        z = self._by_symbol.get(symbol)
        if z is None:
            zone = self.zones.zone_for(symbol)
            z = self._by_zone.get(zone)
            if z is None:
                z = self._by_zone[zone] = _Zone(zone)
            self._by_symbol[symbol] = z
        if ts_us // _QUARTER_US == z.quarter:
            return _text(z.texts, ts_us - z.hour_start_us)
        return self._ts_text(z, ts_us)

    def _ts_text(self, z: _Zone, ts_us: int) -> str:
        offset_us = z.clock.offset_us(ts_us)
        offset = z.offsets.get(offset_us)
        if offset is None:
            offset = z.offsets[offset_us] = offset_text(offset_us)
        hour, us_in_hour = divmod(ts_us + offset_us, _US_PER_HOUR)
        prefix = z.hours.get(hour)
        if prefix is None:
            if len(z.hours) >= _MAX_CACHED_HOURS:
                z.hours.clear()
            prefix = (_EPOCH_NAIVE + timedelta(hours=hour)).isoformat(timespec="hours")
            z.hours[hour] = prefix
        quarter = ts_us // _QUARTER_US
        start = quarter * _QUARTER_US
        if offset_us % _QUARTER_US == 0 and offset_us == z.clock.offset_us(
            start
        ) == z.clock.offset_us(start + _QUARTER_US - 1):
            z.quarter, z.hour_start_us, z.texts = quarter, ts_us - us_in_hour, (prefix, offset)
        return _text((prefix, offset), us_in_hour)


def datetime_text(ts: datetime) -> str:
    """An aware datetime as pydantic writes it (its own offset, seconds dropped, "Z")."""
    offset = ts.utcoffset()
    offset_us = 0 if offset is None else offset // timedelta(microseconds=1)
    return ts.replace(tzinfo=None).isoformat() + offset_text(offset_us)


def _text(texts: tuple[str, str], us_in_hour: int) -> str:
    second, micro = divmod(us_in_hour, US_PER_S)
    ms, us = divmod(micro, 1000)
    fraction = f".{micro:06d}" if us else _MILLIS[ms]
    return texts[0] + _MINUTE_SECOND[second] + fraction + texts[1]


# -- decoding the canonical JSON ---------------------------------------------------------

_MAX_US = MAX_EPOCH_MS * 1000
_SAFE_INT = 2**53  # beyond this an int price is not exactly a float: let the model decide


def valid_price(value: Any) -> float | None:
    """A decoded JSON price the model would take (a finite float above 0, or an int that
    is exactly a float), as a float; else None."""
    kind = type(value)
    if kind is float:
        return value if value > 0 and math.isfinite(value) else None
    if kind is int and 0 < value < _SAFE_INT:
        return float(value)
    return None


class FastTicks:
    """Decodes the ticks our own services write: (symbol, ts_us, price), or None."""

    def __init__(self) -> None:
        self._symbols: set[str] = set()

    def check(self, obj: dict[str, Any]) -> tuple[str, int, float, int, str] | None:
        """A tick's JSON object (orjson-decoded: a record, or an element of a bundle) as
        (symbol, ts_us, price, volume, kind) if it is plainly valid, else None: the model
        decides."""
        symbol = obj.get("symbol")
        ts = obj.get("ts")
        if type(symbol) is not str or type(ts) is not str:
            return None
        if symbol not in self._symbols:
            if not is_valid_symbol(symbol):
                return None
            self._symbols.add(symbol)
        price = valid_price(obj.get("price"))
        if price is None:
            return None
        volume = obj.get("volume", 0)
        if type(volume) is not int or volume < 0:
            return None
        kind = obj.get("kind", "trade")
        if type(kind) is not str or kind not in _KINDS:
            return None
        # Aware ISO-8601 only: digits (epoch ms), naive times (exchange-local) and
        # anything with spaces go to the model, which knows the zones.
        if not ts.isascii() or ts.isdigit() or ts != ts.strip():
            return None
        try:
            when = datetime.fromisoformat(ts)
        except ValueError:
            return None
        if when.tzinfo is None or when.utcoffset() is None:
            return None
        us = to_us(when)
        if not 0 <= us < _MAX_US:
            return None
        return symbol, us, price, volume, kind


# -- CSV cells ------------------------------------------------------------------------

_PLAIN_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,15})?").fullmatch


class ParsedTick(NamedTuple):
    """The values of a valid tick, without the cost of a model instance."""

    symbol: str
    ts_us: int
    price: float
    volume: int
    kind: str
    # The parsed datetime when one was built anyway; epoch-ms input never builds one.
    ts: datetime | None = None


# NamedTuple's generated __new__ is a Python function; tuple.__new__ skips that frame.
_new_parsed = tuple.__new__


class TickCells:
    """The CSV fast path: a tick's five cells (symbol, ts, price, volume, kind), read with
    the configured exchange zones (a naive time is the symbol's exchange time)."""

    def __init__(self, zones: ExchangeZones) -> None:
        self._zones = zones
        self._symbols: set[str] = set()

    def fast_cells(
        self, symbol: str, ts: str, price: str, volume: str, kind: str
    ) -> ParsedTick | None:
        """The tick the model would build from these cells, or None: the model decides."""
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
