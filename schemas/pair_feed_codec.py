"""The pair feed's common messages without a model: a pair tick's JSON, and the fast
read of the shapes the symbol stage writes (`PairTick`, `Heartbeat`).

Each answers exactly as `PairFeedMessage` does for the shapes it takes on, and leaves
every other message to the model; property tests hold them to it.
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.tick_codec import valid_price

_INF = float("inf")


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
    if kind != "tick":
        return HEARTBEAT if kind == "heartbeat" and len(obj) == 1 else None
    # Every key read, and as many keys as read: exactly the tick's keys (no key-set
    # comparison, which costs as much as the rest of the check).
    try:
        size = len(obj)
        if size == 7:
            index = obj["src_index"]
            if type(index) is not int:
                return None
        elif size == 6:
            index = 0
        else:
            return None
        symbol, ts_us, price = obj["symbol"], obj["ts_us"], obj["price"]
        part, off = obj["src_partition"], obj["src_offset"]
    except KeyError:
        return None
    if type(price) is float and 0 < price < _INF:
        pass  # the usual price: finite and above 0 (NaN fails the comparison)
    else:
        price = valid_price(price)
        if price is None:
            return None
    if (
        type(symbol) is not str
        or type(ts_us) is not int
        or type(part) is not int
        or type(off) is not int
    ):
        return None
    return symbol, ts_us, price, part, off, index
