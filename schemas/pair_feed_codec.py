"""The pair feed's common messages without a model: a pair tick's JSON, and the fast
read of the shapes the symbol stage writes (`PairTick`, `Heartbeat`).

Each answers exactly as `PairFeedMessage` does for the shapes it takes on, and leaves
every other message to the model; property tests hold them to it.
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.tick_codec import valid_price

_PAIR_TICK_KEYS = frozenset(("type", "symbol", "ts_us", "price", "src_partition", "src_offset"))
_PAIR_TICK_KEYS_INDEXED = _PAIR_TICK_KEYS | {"src_index"}


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


def check_pair_feed(obj: dict[str, Any]) -> PairFeedTuple | str | None:
    """A message's JSON object (orjson-decoded: a record, or an element of a bundle) as
    a pair tick (symbol, ts_us, price, src_partition, src_offset, src_index), HEARTBEAT,
    or None when the `PairFeedMessage` model must decide."""
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
    price = valid_price(obj["price"])
    if (
        price is None
        or type(symbol) is not str
        or type(ts_us) is not int
        or type(part) is not int
        or type(off) is not int
    ):
        return None
    return symbol, ts_us, price, part, off, index
