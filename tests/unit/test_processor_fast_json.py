"""The processor's orjson fast paths must answer exactly as the pydantic models do."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas.pair_feed import Heartbeat, PairFeedMessage, PairTick
from schemas.tick import Tick
from services.detection.timeline import to_us
from services.processor.fast_json import HEARTBEAT, FastTicks, pair_tick, parse_pair_feed

PAIR_FEED: TypeAdapter[PairTick | Heartbeat] = TypeAdapter(PairFeedMessage)

symbols = st.one_of(
    st.sampled_from(["2513.HK", "000688.SH", "HSTECH.HK", "^GSPC", "", "A B", "x" * 33, "a\n"]),
    st.text(alphabet="AZaz09.^_- /\n", max_size=34),
    st.integers(),
    st.none(),
)
aware = st.datetimes(
    min_value=datetime(1960, 1, 1),
    max_value=datetime(2300, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
)
timestamps = st.one_of(
    aware.map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2300, 1, 1)).map(
        lambda d: d.isoformat()
    ),
    st.sampled_from(
        [
            "2026-02-13T10:15:00+08:00",
            "2026-02-13T02:15:00Z",
            "2026-02-13 10:15:00.250+08:00",
            " 2026-02-13T10:15:00+08:00",
            "2026-02-13T10:15:00+08:00 ",
            "1760000000000",
            "2026-02-13",
            "20260213T101500+0800",
            "１２３",
            "",
            "soon",
        ]
    ),
    st.integers(min_value=-5, max_value=8_000_000_000_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
prices = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-5, max_value=2**60),
    st.sampled_from(["1.5", "0", True, False, None, 0.0, -0.0, 5e-324]),
)
volumes = st.one_of(
    st.integers(min_value=-3, max_value=10**16), st.sampled_from([1.0, 1.5, "7", True])
)
kinds = st.sampled_from(["trade", "index", "bond", "Trade", "", 1])
optional = st.just(...)  # a field left out


@st.composite
def tick_objects(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, strategy in (
        ("symbol", symbols),
        ("ts", timestamps),
        ("price", prices),
        ("volume", volumes),
        ("kind", kinds),
    ):
        value = draw(st.one_of(strategy, optional) if draw(st.booleans()) else strategy)
        if value is not ...:
            obj[name] = value
    if draw(st.booleans()):
        obj["extra"] = draw(st.integers())
    return obj


def model_answer(raw: bytes) -> tuple[str, int, float] | None:
    try:
        tick = Tick.model_validate_json(raw)
    except ValidationError:
        return None
    return tick.symbol, to_us(tick.ts), tick.price


@settings(max_examples=1500, deadline=None)
@given(tick_objects())
def test_fast_tick_parse_agrees_with_the_model(obj: dict[str, Any]) -> None:
    raw = json.dumps(obj).encode()
    fast = FastTicks().parse(raw)
    if fast is not None:  # the fast path answers only for valid ticks, with the same values
        assert fast == model_answer(raw)


@settings(max_examples=300, deadline=None)
@given(aware, st.floats(min_value=1e-6, max_value=1e9), st.sampled_from(["2513.HK", "^GSPC"]))
def test_what_the_ingestor_writes_takes_the_fast_path(
    when: datetime, price: float, symbol: str
) -> None:
    if not datetime(1970, 1, 1, tzinfo=UTC) <= when < datetime(2200, 1, 1, tzinfo=UTC):
        return
    raw = Tick(symbol=symbol, ts=when, price=price, volume=3).model_dump_json().encode()
    parsed = FastTicks().parse(raw)
    assert parsed is not None
    assert parsed == model_answer(raw)


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"[1]", b'"x"', b"\xff\xfe", b'{"symbol": "A"}', b"1e400"]
)
def test_broken_values_go_to_the_model(raw: bytes) -> None:
    assert FastTicks().parse(raw) is None


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
    assert parse_pair_feed(raw) == (symbol, ts_us, price, partition, offset, index)


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
def test_pair_feed_fast_parse_agrees_with_the_model(obj: dict[str, Any]) -> None:
    raw = json.dumps(obj).encode()
    fast = parse_pair_feed(raw)
    if fast is None:
        return  # the model decides
    model = PAIR_FEED.validate_json(raw)
    if fast is HEARTBEAT:
        assert isinstance(model, Heartbeat)
    else:
        assert isinstance(model, PairTick)
        assert fast == model.as_tuple()
        assert math.isfinite(model.price)
