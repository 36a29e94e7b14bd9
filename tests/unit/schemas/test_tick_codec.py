"""The tick codec answers exactly as the Tick model does: byte for byte when it encodes,
value for value when its fast paths decode (JSON as our services write it, CSV cells)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.tick import MAX_EPOCH_MS, Tick, TickKind
from schemas.tick_codec import FastTicks, ParsedTick, TickCells, TickJson
from schemas.zones import ExchangeZones
from services.detection.rules import Rules
from services.detection.timeline import from_us, to_us
from services.ingestor.screening import Accepted, Screener
from services.parsing.feed import KNOWN_COLUMNS, RawRecord
from services.parsing.validation import Invalid, TickParser, TickValidator
from services.processor.outputs import Record
from services.processor.symbol_stage import SymbolStage

# -- encoding: the canonical JSON -------------------------------------------------------

# Whole-hour, half-hour, 45-minute, negative and seasonal offsets, and Monrovia's
# -00:44:30 before 1972 (an offset with seconds).
ZONES = ExchangeZones(
    {
        ".HK": "Asia/Hong_Kong",
        ".SH": "Asia/Shanghai",
        ".L": "Europe/London",
        ".NY": "America/New_York",
        ".KT": "Asia/Kathmandu",
        ".CH": "Pacific/Chatham",
        ".MR": "Africa/Monrovia",
        ".IN": "Asia/Kolkata",
    }
)
NOW = datetime(2026, 2, 13, tzinfo=UTC)
SYMBOLS = [
    "0001.HK",
    "600000.SH",
    "VOD.L",
    "IBM.NY",
    "NEP.KT",
    "X.CH",
    "LR.MR",
    "TCS.IN",
    "AAPL",
]


def model_json(symbol: str, ts_us: int, price: float, volume: int, kind: TickKind) -> bytes:
    ts = from_us(ts_us, ZONES.zone_for(symbol))
    tick = Tick.model_construct(symbol=symbol, ts=ts, price=price, volume=volume, kind=kind)
    return tick.model_dump_json().encode()


@settings(max_examples=1500, deadline=None)
@given(
    symbol=st.sampled_from(SYMBOLS),
    ts_us=st.one_of(
        st.integers(min_value=0, max_value=MAX_EPOCH_MS * 1000 - 1),
        st.integers(min_value=0, max_value=MAX_EPOCH_MS - 1).map(lambda ms: ms * 1000),
        # Around daylight-saving changes and 1972, where offsets move.
        st.integers(min_value=60_000_000 * 10**6, max_value=80_000_000 * 10**6),
    ),
    price=st.one_of(
        st.floats(min_value=5e-324, allow_nan=False, allow_infinity=False),
        st.decimals(min_value="0.000000000000001", max_value=10**15, places=15).map(float),
    ),
    volume=st.integers(min_value=0, max_value=10**16),
    kind=st.sampled_from(["trade", "index"]),
)
@example("VOD.L", 1_729_990_800_000_000, 1e-05, 0, "trade")  # the fall-back hour, London
@example("LR.MR", 0, 1e16, 3, "index")
@example("AAPL", 1_735_689_600_000_001, 123456789012345.6, 1, "trade")
def test_encode_equals_the_model_dump(
    symbol: str, ts_us: int, price: float, volume: int, kind: TickKind
) -> None:
    # One encoder across examples: its caches must never leak one tick's text into another.
    assert ENCODER.encode(symbol, ts_us, price, volume, kind) == model_json(
        symbol, ts_us, price, volume, kind
    )


ENCODER = TickJson(ZONES)


def test_the_same_second_in_two_zones_is_two_texts() -> None:
    enc = TickJson(ZONES)
    us = 1_735_689_600_250_000
    assert enc.ts_text("0001.HK", us) == "2025-01-01T08:00:00.250000+08:00"
    assert enc.ts_text("AAPL", us) == "2025-01-01T00:00:00.250000Z"
    assert enc.ts_text("IBM.NY", us) == "2024-12-31T19:00:00.250000-05:00"
    assert enc.ts_text("0001.HK", us - 250_000) == "2025-01-01T08:00:00+08:00"


@settings(max_examples=300, deadline=None)
@given(
    symbol=st.sampled_from(SYMBOLS),
    start_us=st.integers(min_value=0, max_value=MAX_EPOCH_MS * 1000 - 10**12),
    steps=st.lists(st.integers(min_value=0, max_value=400 * 10**6), min_size=1, max_size=60),
)
@example("IBM.NY", 1_710_054_000_000_000, [600 * 10**6] * 12)  # New York springs forward
@example("VOD.L", 1_729_990_000_000_000, [250 * 10**6] * 30)  # London falls back
def test_a_run_of_ticks_in_time_order_encodes_as_the_model(
    symbol: str, start_us: int, steps: list[int]
) -> None:
    """The cached quarter hour serves the ticks that follow: across hours and offsets too."""
    enc = TickJson(ZONES)
    ts_us = start_us
    for step in steps:
        ts_us += step
        assert enc.encode(symbol, ts_us, 1.5, 0, "trade") == model_json(
            symbol, ts_us, 1.5, 0, "trade"
        )


cells = st.tuples(
    st.sampled_from(SYMBOLS),
    st.one_of(
        st.integers(min_value=0, max_value=MAX_EPOCH_MS - 1).map(str),
        st.sampled_from(["2026-02-13T10:15:00.5+08:00", "2026-03-08 02:30:00", "2024-10-27T01:30"]),
    ),
    st.decimals(min_value="0.0001", max_value=10**9, places=4).map(str),
    st.one_of(st.just(""), st.integers(min_value=0, max_value=10**12).map(str)),
    st.sampled_from(["", "trade", "index"]),
)


@settings(max_examples=500, deadline=None)
@given(rows=st.lists(cells, min_size=1, max_size=20))
def test_screened_ticks_are_the_models_bytes(rows: list[tuple[str, str, str, str, str]]) -> None:
    """What the ingestor sends for a CSV line is what the Tick model validates and dumps."""
    screener = Screener(ZONES, 10**10, "feed.csv", lambda: NOW)  # nothing is late
    validator = TickValidator(ZONES)
    for line, row in enumerate(rows, start=2):
        out = screener.screen(RawRecord(line, ",".join(row), list(row)))
        tick = validator.validate(dict(zip(KNOWN_COLUMNS, row, strict=True)))
        assert isinstance(tick, Tick)
        assert isinstance(out, Accepted)
        assert out.value == tick.model_dump_json().encode()
        assert (out.symbol, out.ts_us) == (tick.symbol, to_us(tick.ts))


@settings(max_examples=300, deadline=None)
@given(
    symbol=st.sampled_from(SYMBOLS),
    ts=st.one_of(
        st.integers(min_value=0, max_value=MAX_EPOCH_MS - 1),
        st.sampled_from(["2026-03-08T02:30:00", "2024-10-27T01:30:00+01:00", "2026-02-13"]),
    ),
    price=st.floats(min_value=1e-9, max_value=1e15),
    volume=st.integers(min_value=0, max_value=10**12),
)
def test_json_lines_ticks_are_the_models_bytes(
    symbol: str, ts: int | str, price: float, volume: int
) -> None:
    """A JSON Lines tick (numbers, not text) takes the model's own path: same bytes."""
    fields = {"symbol": symbol, "ts": ts, "price": price, "volume": volume}
    out = Screener(ZONES, 10**10, "feed.jsonl", lambda: NOW).screen(RawRecord(2, "", fields))
    tick = TickValidator(ZONES).validate(fields)
    assert isinstance(tick, Tick)
    assert isinstance(out, Accepted)
    assert out.value == tick.model_dump_json().encode()


# -- decoding: the JSON our services write ----------------------------------------------

json_symbols = st.one_of(
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
json_timestamps = st.one_of(
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
json_prices = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-5, max_value=2**60),
    st.sampled_from(["1.5", "0", True, False, None, 0.0, -0.0, 5e-324]),
)
json_volumes = st.one_of(
    st.integers(min_value=-3, max_value=10**16), st.sampled_from([1.0, 1.5, "7", True])
)
json_kinds = st.sampled_from(["trade", "index", "bond", "Trade", "", 1])
optional = st.just(...)  # a field left out


@st.composite
def tick_objects(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, strategy in (
        ("symbol", json_symbols),
        ("ts", json_timestamps),
        ("price", json_prices),
        ("volume", json_volumes),
        ("kind", json_kinds),
    ):
        value = draw(st.one_of(strategy, optional) if draw(st.booleans()) else strategy)
        if value is not ...:
            obj[name] = value
    if draw(st.booleans()):
        obj["extra"] = draw(st.integers())
    return obj


def model_answer(raw: bytes) -> tuple[str, int, float, int, str] | None:
    try:
        tick = Tick.model_validate_json(raw)
    except ValidationError:
        return None
    return tick.symbol, to_us(tick.ts), tick.price, tick.volume, tick.kind


def fast_answer(raw: bytes) -> tuple[str, int, float, int, str] | None:
    """The fast path's answer for a record, as the symbol stage asks it: decoded by orjson,
    then checked if it is an object."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return FastTicks().check(obj) if type(obj) is dict else None


@settings(max_examples=1500, deadline=None)
@given(tick_objects())
def test_fast_tick_decode_agrees_with_the_model(obj: dict[str, Any]) -> None:
    raw = json.dumps(obj).encode()
    fast = fast_answer(raw)
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
    parsed = fast_answer(raw)
    assert parsed is not None
    assert parsed == model_answer(raw)


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"[1]", b'"x"', b"\xff\xfe", b'{"symbol": "A"}', b"1e400"]
)
def test_broken_values_go_to_the_model(raw: bytes) -> None:
    """The symbol stage reads them with the model, which dead-letters each as malformed."""
    assert fast_answer(raw) is None
    table: dict[str, Any] = {}
    out = SymbolStage(Rules(), "ticks").process([Record(None, raw, 0, 0)], table.get, 0.0)
    assert [d.reason for d in out.dead] == ["malformed"]
    assert out.evaluated == 0


# -- decoding: CSV cells ----------------------------------------------------------------

CSV_ZONES = ExchangeZones()

csv_symbols = st.one_of(
    st.sampled_from(["2513.HK", "000688.SH", "HSTECH.HK", "AAPL", "^GSPC", "", "A B", "x" * 33]),
    st.text(alphabet="AZaz09.^_- /\n", max_size=34),
)
csv_timestamps = st.one_of(
    st.integers(min_value=-5, max_value=8_000_000_000_000).map(str),
    st.sampled_from(
        [
            "2026-02-13T10:15:00+08:00",
            "2026-02-13T10:15:00",
            "2026-02-13T02:15:00Z",
            "2026-02-13 10:15:00.250",
            " 1760000000000",
            "１２３",
            "",
            "soon",
            "7258118400000",
            "7258118399999",
        ]
    ),
)
csv_prices = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(min_value=-10, max_value=10**9, places=4, allow_nan=False).map(str),
    st.sampled_from(["0", "0.0", "496.00", "1_000", " 5", "1e3", "nan", "", "abc", "00012.5"]),
)
csv_volumes = st.one_of(
    st.integers(min_value=-3, max_value=10**16).map(str),
    st.sampled_from(["", "1.5", " 7", "x"]),
)
csv_kinds = st.sampled_from(["", "trade", "index", "bond", "Trade", " "])


def same(a: ParsedTick | Invalid, b: ParsedTick | Invalid) -> bool:
    if isinstance(a, Invalid) or isinstance(b, Invalid):
        return isinstance(a, Invalid) and isinstance(b, Invalid)
    return (a.symbol, a.ts_us, a.price, a.volume, a.kind) == (
        b.symbol,
        b.ts_us,
        b.price,
        b.volume,
        b.kind,
    )


@settings(max_examples=600, deadline=None)
@given(csv_symbols, csv_timestamps, csv_prices, csv_volumes, csv_kinds)
def test_csv_fast_path_agrees_with_the_model(
    symbol: str, ts: str, price: str, volume: str, kind: str
) -> None:
    cells = [symbol, ts, price, volume, kind]
    fast = TickCells(CSV_ZONES).fast_cells(*cells)
    model = TickValidator(CSV_ZONES).validate(dict(zip(KNOWN_COLUMNS, cells, strict=True)))
    reference: ParsedTick | Invalid = (
        model
        if isinstance(model, Invalid)
        else ParsedTick(model.symbol, to_us(model.ts), model.price, model.volume, model.kind)
    )
    if fast is not None:  # the fast path answers only for valid ticks, with the same values
        assert same(fast, reference), (cells, fast, reference)
    parsed = TickParser(CSV_ZONES).parse(cells)  # the fast path, else the model
    assert same(parsed, reference), (cells, parsed, reference)


def test_csv_fast_path_is_taken_for_plain_csv() -> None:
    parsed = TickCells(CSV_ZONES).fast_cells("2513.HK", "1770948900000", "496.00", "1200", "trade")
    assert parsed == ParsedTick("2513.HK", 1770948900000 * 1000, 496.0, 1200, "trade")
