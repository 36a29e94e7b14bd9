"""The pair feed codec answers exactly as the PairFeedMessage model does."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from schemas.pair_feed import Heartbeat, PairBar, PairFeedMessage, PairTick
from schemas.pair_feed_codec import HEARTBEAT, PairFeedTuple, check_pair_feed, pair_tick

PAIR_FEED: TypeAdapter[PairTick | PairBar | Heartbeat] = TypeAdapter(PairFeedMessage)


def fast_answer(raw: bytes) -> PairFeedTuple | str | None:
    """The fast path's answer for a record, as the pair stage asks it: decoded by orjson,
    then checked if it is an object."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return check_pair_feed(obj) if type(obj) is dict else None


prices = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-5, max_value=2**60),
    st.sampled_from(["1.5", "0", True, False, None, 0.0, -0.0, 5e-324]),
)


@settings(max_examples=500, deadline=None)
@given(
    st.text(max_size=12),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.floats(min_value=1e-9, max_value=1e12),
    st.integers(min_value=0, max_value=1000),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=0, max_value=10**5),
)
def test_pair_tick_json_round_trips_through_the_model(
    symbol: str, ts_us: int, price: float, partition: int, offset: int, index: int
) -> None:
    raw = pair_tick(symbol, ts_us, price, partition, offset, index)
    model = PAIR_FEED.validate_json(raw)
    assert isinstance(model, PairTick)
    assert json.loads(raw) == json.loads(model.model_dump_json())
    assert fast_answer(raw) == (symbol, ts_us, price, partition, offset, index)


pair_objects = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["tick", "heartbeat", "other", 1]),
        "symbol": st.one_of(st.text(max_size=5), st.integers()),
        "ts_us": st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
        "price": prices,
        "src_partition": st.one_of(st.integers(min_value=-2, max_value=9), st.just("1")),
        "src_offset": st.one_of(st.integers(min_value=-2, max_value=10**9), st.booleans()),
        "src_index": st.one_of(st.integers(min_value=-2, max_value=10**5), st.booleans()),
        "extra": st.integers(),
    },
)


@settings(max_examples=1500, deadline=None)
@given(pair_objects)
def test_pair_feed_fast_decode_agrees_with_the_model(obj: dict[str, Any]) -> None:
    raw = json.dumps(obj).encode()
    fast = fast_answer(raw)
    if fast is None:
        return  # the model decides
    model = PAIR_FEED.validate_json(raw)
    if fast is HEARTBEAT:
        assert isinstance(model, Heartbeat)
    else:
        assert isinstance(model, PairTick)
        assert fast == model.as_tuple()
        assert math.isfinite(model.price)
