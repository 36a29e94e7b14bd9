"""The symbol map: Futu and Yahoo spellings to canonical symbols, and the user's overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.tick import is_valid_symbol
from services.ingestor.symbols import (
    SymbolMap,
    UnmappableSymbolError,
    canonical_symbol,
    load_overrides,
    parse_overrides,
)


@pytest.mark.parametrize(
    ("source", "canonical"),
    [
        ("HK.00700", "0700.HK"),
        ("HK.09988", "9988.HK"),
        ("HK.02513", "2513.HK"),
        ("HK.00005", "0005.HK"),
        ("HK.80737", "80737.HK"),  # five-digit codes keep five
        ("hk.00700", "0700.HK"),
        ("SH.600519", "600519.SH"),
        ("SH.000688", "000688.SH"),
        ("SZ.000001", "000001.SZ"),
        ("US.AAPL", "AAPL"),
        ("US.BRK.B", "BRK.B"),
        ("600519.SS", "600519.SH"),
        ("600519.ss", "600519.SH"),
        ("000001.SZ", "000001.SZ"),
        ("0700.HK", "0700.HK"),
        ("00700.HK", "0700.HK"),
        ("700.HK", "0700.HK"),
        ("600519.SH", "600519.SH"),
        ("AAPL", "AAPL"),
        ("BRK.B", "BRK.B"),
        ("HSI.HK", "HSI.HK"),
        ("^HSI", "^HSI"),
    ],
)
def test_the_rules(source: str, canonical: str) -> None:
    assert canonical_symbol(source) == canonical
    assert SymbolMap().canonical(source) == canonical


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("HK.TCH", "HK code is digits"),
        ("HK.00000", "1 to 5 digits"),
        ("HK.800000", "HK.800000=HSI.HK"),  # an index: the message says how to map it
        ("SH.60051", "6 digits"),
        ("SZ.0000001", "6 digits"),
        ("1234567.SS", "6 digits"),
        ("US.HK.00700", "not a US ticker"),
        ("US.", "not a US ticker"),
        ("I:SPX", "not a valid symbol"),
        ("BTC/USD", "not a valid symbol"),
        ("", "not a valid symbol"),
        ("A" * 33, "not a valid symbol"),
    ],
)
def test_unmappable_symbols_say_why(source: str, reason: str) -> None:
    with pytest.raises(UnmappableSymbolError, match=reason.replace(".", r"\.")):
        SymbolMap().canonical(source)


symbol_text = st.text(alphabet="ABCHKSUZhksz0123456789.^_-:/ ", max_size=12)
ticker = st.from_regex(r"[A-Z]{1,5}(\.[A-Z])?", fullmatch=True)
hk_code = st.integers(1, 99_999)
a_share = st.from_regex(r"[0-9]{6}", fullmatch=True)


def _mapped(source: str) -> str | None:
    try:
        return canonical_symbol(source)
    except UnmappableSymbolError:
        return None


@given(st.one_of(symbol_text, ticker))
def test_mapping_is_idempotent_and_yields_valid_symbols(source: str) -> None:
    canonical = _mapped(source)
    if canonical is not None:
        assert is_valid_symbol(canonical)
        assert canonical_symbol(canonical) == canonical


@given(ticker)
def test_us_tickers_pass_unchanged_bare_or_behind_us(symbol: str) -> None:
    assert canonical_symbol(symbol) == symbol
    assert canonical_symbol(f"US.{symbol}") == symbol


@given(hk_code, st.integers(0, 3))
def test_every_spelling_of_a_hk_code_is_one_symbol(code: int, extra_zeros: int) -> None:
    expected = f"{code:04d}.HK"
    spellings = {
        f"HK.{code:05d}",  # Futu
        f"{code:04d}.HK",  # Yahoo, HKEX
        f"{'0' * extra_zeros}{code}.HK",
        f"HK.{'0' * extra_zeros}{code}",
    }
    assert {canonical_symbol(s) for s in spellings} == {expected}


@given(a_share, st.sampled_from(["SH", "SZ"]))
def test_every_spelling_of_an_a_share_is_one_symbol(code: str, market: str) -> None:
    spellings = [f"{market}.{code}", f"{code}.{market}", f"{code}.{market.lower()}"]
    if market == "SH":
        spellings.append(f"{code}.SS")
    assert {canonical_symbol(s) for s in spellings} == {f"{code}.{market}"}


@given(st.dictionaries(symbol_text, ticker, max_size=5), symbol_text)
def test_overrides_come_first(overrides: dict[str, str], source: str) -> None:
    symbols = SymbolMap(overrides)
    if source in overrides:
        assert symbols.canonical(source) == overrides[source]
        return
    expected = _mapped(source)
    if expected is None:
        with pytest.raises(UnmappableSymbolError):
            symbols.canonical(source)
    else:
        assert symbols.canonical(source) == expected


def test_an_override_renames_even_what_the_rules_accept() -> None:
    symbols = SymbolMap({"HK.800000": "HSI.HK", "0700.HK": "TENCENT.HK", "I:SPX": "SPX"})
    assert symbols.canonical("HK.800000") == "HSI.HK"
    assert symbols.canonical("0700.HK") == "TENCENT.HK"
    assert symbols.canonical("HK.00700") == "0700.HK"  # the override names a source exactly
    assert symbols.canonical("I:SPX") == "SPX"
    # remembered, and still the same answer
    assert symbols.canonical("HK.800000") == "HSI.HK"


def test_an_override_must_name_a_valid_symbol() -> None:
    with pytest.raises(ValueError, match="not a valid symbol"):
        SymbolMap({"X": "has space"})


def test_override_file_format() -> None:
    text = """
# Futu's index codes
HK.800000 = HSI.HK   # Hang Seng
HK.800700=HSTECH.HK

^HSI=HSI.HK
"""
    assert parse_overrides(text) == {
        "HK.800000": "HSI.HK",
        "HK.800700": "HSTECH.HK",
        "^HSI": "HSI.HK",
    }
    assert parse_overrides("A=B\nA=B\n") == {"A": "B"}  # a repeat that agrees is harmless


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("HK.800000 HSI.HK\n", "m:1: expected source=canonical"),
        ("=HSI.HK\n", "m:1: expected source=canonical"),
        ("A=B\nX=\n", "m:2: expected source=canonical"),
        ("A=bad symbol\n", "m:1: 'bad symbol' is not a valid symbol"),
        ("A=B\nA=C\n", r"m:2: A is mapped twice \(B, C\)"),
    ],
)
def test_bad_override_lines_are_refused_with_their_line(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_overrides(text, "m")


def test_override_file_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "symbols.txt"
    good.write_text("HK.800000=HSI.HK\n")
    assert load_overrides(good) == {"HK.800000": "HSI.HK"}
    with pytest.raises(ValueError, match=r"--symbol-map .*missing"):
        load_overrides(tmp_path / "missing")
