"""The backtest's fast tick parser must answer exactly as the Tick model does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.zones import ExchangeZones
from services.detection.timeline import to_us
from services.parsing.feed import KNOWN_COLUMNS
from services.parsing.validation import Invalid, ParsedTick, TickParser, TickValidator

ZONES = ExchangeZones()

symbols = st.one_of(
    st.sampled_from(["2513.HK", "000688.SH", "HSTECH.HK", "AAPL", "^GSPC", "", "A B", "x" * 33]),
    st.text(alphabet="AZaz09.^_- /\n", max_size=34),
)
timestamps = st.one_of(
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
prices = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(min_value=-10, max_value=10**9, places=4, allow_nan=False).map(str),
    st.sampled_from(["0", "0.0", "496.00", "1_000", " 5", "1e3", "nan", "", "abc", "00012.5"]),
)
volumes = st.one_of(
    st.integers(min_value=-3, max_value=10**16).map(str),
    st.sampled_from(["", "1.5", " 7", "x"]),
)
kinds = st.sampled_from(["", "trade", "index", "bond", "Trade", " "])


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
@given(symbols, timestamps, prices, volumes, kinds)
def test_fast_path_agrees_with_the_model(
    symbol: str, ts: str, price: str, volume: str, kind: str
) -> None:
    cells = [symbol, ts, price, volume, kind]
    fast = TickParser(ZONES).parse(cells)
    model = TickValidator(ZONES).validate(dict(zip(KNOWN_COLUMNS, cells, strict=True)))
    reference: ParsedTick | Invalid = (
        model
        if isinstance(model, Invalid)
        else ParsedTick(model.symbol, to_us(model.ts), model.price, model.volume, model.kind)
    )
    assert same(fast, reference), (cells, fast, reference)


def test_fast_path_is_taken_for_plain_csv() -> None:
    parser = TickParser(ZONES)
    parsed = parser.fast_cells("2513.HK", "1770948900000", "496.00", "1200", "trade")
    assert parsed == ParsedTick("2513.HK", 1770948900000 * 1000, 496.0, 1200, "trade")
