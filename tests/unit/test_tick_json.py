"""The ingestor's tick JSON must be byte for byte what the Tick model dumps."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.tick import MAX_EPOCH_MS, Tick, TickKind
from schemas.zones import ExchangeZones
from services.detection.timeline import from_us, to_us
from services.ingestor.screening import Accepted, Screener
from services.ingestor.tick_json import TickJson
from services.parsing.feed import KNOWN_COLUMNS, RawRecord
from services.parsing.validation import TickValidator

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
SYMBOLS = ["0001.HK", "600000.SH", "VOD.L", "IBM.NY", "NEP.KT", "X.CH", "LR.MR", "TCS.IN", "AAPL"]


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
