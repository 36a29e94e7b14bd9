"""The ingestor's tick JSON must be byte for byte what the Tick model dumps."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.tick import MAX_EPOCH_MS, Tick, TickKind
from schemas.zones import ExchangeZones
from services.detection.timeline import from_us
from services.ingestor.tick_json import TickJson

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
