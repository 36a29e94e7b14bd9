"""A tick's canonical JSON (what `Tick.model_dump_json` gives) without building a `Tick`.

The ingestor sends every tick in this form. Building a pydantic model, a zone-aware
datetime and a pydantic dump cost about 5 us a tick, most of the replay's time; this
costs about one. The timestamp string is assembled from cached parts: the local hour's
"YYYY-MM-DDTHH", the second's ":MM:SS", the fraction, and the zone's offset ("Z" when it
is zero, as pydantic writes it). orjson writes the object, its floats as pydantic does.
A property test holds the bytes equal to the model's.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

import orjson

from schemas.zones import ExchangeZones
from services.detection.timeline import US_PER_S, ZoneClock

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
