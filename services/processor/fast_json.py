"""Fast paths for the JSON the processor reads on every record, with the models as fallback.

`Tick.model_validate_json` costs about 3.4 µs a tick and `PairTick.model_dump_json` 2 µs;
orjson with a few explicit checks does the same for the shapes our own services write
(the ingestor's `Tick.model_dump_json`, the symbol stage's pair ticks) in under 1 µs.
Anything else (other types, naive or odd timestamps, missing fields, broken JSON) returns
None here and is judged by the pydantic model itself, so the answer (the values, or the
dead letter with its reason) is the model's. A property test holds the two to the same
values.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson

from schemas.tick import MAX_EPOCH_MS, is_valid_symbol
from services.detection.timeline import to_us

_MAX_US = MAX_EPOCH_MS * 1000
_SAFE_INT = 2**53  # beyond this an int price is not exactly a float: let the model decide
_KINDS = frozenset(("trade", "index"))
_PAIR_TICK_KEYS = frozenset(("type", "symbol", "ts_us", "price", "src_partition", "src_offset"))
_PAIR_TICK_KEYS_INDEXED = _PAIR_TICK_KEYS | {"src_index"}


def _price(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        return value if value > 0 and math.isfinite(value) else None
    if kind is int and 0 < value < _SAFE_INT:
        return float(value)
    return None


def _object(value: bytes) -> dict[str, Any] | None:
    """The JSON object in `value`, or None for anything else (the model then decides)."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return obj if type(obj) is dict else None


class FastTicks:
    """`parse(value)`: (symbol, ts_us, price) of a plainly valid tick, else None."""

    def __init__(self) -> None:
        self._symbols: set[str] = set()

    def parse(self, value: bytes) -> tuple[str, int, float] | None:
        obj = _object(value)
        return None if obj is None else self.check(obj)

    def check(self, obj: dict[str, Any]) -> tuple[str, int, float] | None:
        """`parse` of a tick already decoded (an element of a bundle)."""
        symbol = obj.get("symbol")
        ts = obj.get("ts")
        if type(symbol) is not str or type(ts) is not str:
            return None
        if symbol not in self._symbols:
            if not is_valid_symbol(symbol):
                return None
            self._symbols.add(symbol)
        price = _price(obj.get("price"))
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
        return symbol, us, price


def pair_tick(
    symbol: str, ts_us: int, price: float, partition: int, offset: int, index: int = 0
) -> bytes:
    """The JSON of `PairTick(...)` (same fields, same order), without the model."""
    return orjson.dumps(
        {
            "type": "tick",
            "symbol": symbol,
            "ts_us": ts_us,
            "price": price,
            "src_partition": partition,
            "src_offset": offset,
            "src_index": index,
        }
    )


HEARTBEAT = "heartbeat"


PairFeedTuple = tuple[str, int, float, int, int, int]


def parse_pair_feed(value: bytes) -> PairFeedTuple | str | None:
    """A pair tick as (symbol, ts_us, price, src_partition, src_offset, src_index),
    HEARTBEAT, or None when the `PairFeedMessage` model must decide."""
    obj = _object(value)
    return None if obj is None else check_pair_feed(obj)


def check_pair_feed(obj: dict[str, Any]) -> PairFeedTuple | str | None:
    """`parse_pair_feed` of a message already decoded (an element of a bundle)."""
    kind = obj.get("type")
    if kind == "heartbeat" and len(obj) == 1:
        return HEARTBEAT
    if kind != "tick":
        return None
    keys = obj.keys()
    if keys == _PAIR_TICK_KEYS_INDEXED:
        index = obj["src_index"]
        if type(index) is not int:
            return None
    elif keys == _PAIR_TICK_KEYS:
        index = 0
    else:
        return None
    symbol, ts_us, part, off = obj["symbol"], obj["ts_us"], obj["src_partition"], obj["src_offset"]
    price = _price(obj["price"])
    if (
        price is None
        or type(symbol) is not str
        or type(ts_us) is not int
        or type(part) is not int
        or type(off) is not int
    ):
        return None
    return symbol, ts_us, price, part, off, index
