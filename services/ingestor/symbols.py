"""A source's symbols as marketsignal names them (docs/feeds.md, "Symbols").

The canonical form is the one the rules file, the demo and the exchange zones use:
`CODE.MARKET`, the market a suffix (`0700.HK`, `600519.SH`, `000001.SZ`), and US tickers
bare (`AAPL`). Sources spell the same listing differently, so each built-in adapter
passes its symbols through a `SymbolMap`:

- Futu/moomoo style, market first: `HK.00700` -> `0700.HK`, `SH.600519` -> `600519.SH`,
  `SZ.000001` -> `000001.SZ`, `US.AAPL` -> `AAPL`.
- Yahoo style: `600519.SS` -> `600519.SH` (Yahoo's Shanghai suffix); `.SZ` and `.HK` as is.
- Hong Kong codes lose leading zeros down to four digits (`HK.09988` -> `9988.HK`,
  `00700.HK` -> `0700.HK`), as HKEX quotes them; five-digit codes keep five.
- The market part may be in either case (`600519.ss`): the suffix decides the exchange
  zone, and the zones match case-sensitively.
- Anything else that is already a valid tick symbol passes unchanged (`AAPL`, `BRK.B`,
  `HSI.HK`); anything that is not is refused with the reason.

A user's overrides (`--symbol-map FILE`, lines `source=canonical`) come first, before
any rule, so they also rename symbols the rules would accept (indices above all: Futu's
`HK.800000` is the demo's `HSI.HK`). Pure: no I/O but `load_overrides`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from schemas.tick import SYMBOL_PATTERN, is_valid_symbol

# Market first (Futu/moomoo): the market code, a dot, the code in that market.
_MARKET_FIRST = re.compile(r"(HK|SH|SZ|US)\.(.*)", re.IGNORECASE | re.DOTALL)
# Market last (Yahoo, and the canonical form): digits, a dot, the market suffix.
_MARKET_LAST = re.compile(r"(\d+)\.(HK|SH|SS|SZ)", re.IGNORECASE)
# HKEX stock codes are at most five digits; six-digit Futu HK codes are indices.
_HK_MAX_DIGITS = 5
_A_SHARE_DIGITS = 6
# Mapped symbols remembered per map: a feed repeats a few thousand symbols for ever.
_CACHE_MAX = 65_536


class UnmappableSymbolError(ValueError):
    """A source symbol with no canonical form; the message says why."""


def canonical_symbol(source: str) -> str:
    """The built-in rules alone (module docstring); raises UnmappableSymbolError."""
    if m := _MARKET_FIRST.fullmatch(source):
        market, code = m.group(1).upper(), m.group(2)
        if market == "US":
            return _us_ticker(code, source)
        return _listing(code, market, source)
    if m := _MARKET_LAST.fullmatch(source):
        market = m.group(2).upper()
        return _listing(m.group(1), "SH" if market == "SS" else market, source)
    if is_valid_symbol(source):
        return source
    raise UnmappableSymbolError(
        f"{source!r} is not a valid symbol ({SYMBOL_PATTERN}) and no rule or "
        "--symbol-map line maps it"
    )


def _listing(code: str, market: str, source: str) -> str:
    if not (code.isascii() and code.isdigit()):
        raise UnmappableSymbolError(f"{source!r}: a {market} code is digits")
    if market == "HK":
        digits = code.lstrip("0")
        if not digits or len(digits) > _HK_MAX_DIGITS:
            raise UnmappableSymbolError(
                f"{source!r}: HK stock codes have 1 to {_HK_MAX_DIGITS} digits besides "
                "leading zeros (an index needs a --symbol-map line, e.g. HK.800000=HSI.HK)"
            )
        return f"{digits.zfill(4)}.HK"
    if len(code) != _A_SHARE_DIGITS:
        raise UnmappableSymbolError(
            f"{source!r}: Shanghai and Shenzhen codes have {_A_SHARE_DIGITS} digits"
        )
    return f"{code}.{market}"


def _us_ticker(code: str, source: str) -> str:
    # A market-coded symbol behind US. is no US ticker; refused, so that mapping a
    # mapped symbol again changes nothing.
    if not is_valid_symbol(code) or _MARKET_FIRST.fullmatch(code) or _MARKET_LAST.fullmatch(code):
        raise UnmappableSymbolError(f"{source!r}: {code!r} is not a US ticker")
    return code


class SymbolMap:
    """Source symbol -> canonical symbol: the user's overrides first, then the rules."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.overrides: dict[str, str] = dict(overrides or {})
        for source, target in self.overrides.items():
            if not is_valid_symbol(target):
                raise ValueError(f"symbol map: {source}={target}: {target!r} is not a valid symbol")
        self._cache: dict[str, str] = {}

    def canonical(self, source: str) -> str:
        """The canonical symbol of `source`; raises UnmappableSymbolError saying why not."""
        known = self._cache.get(source)
        if known is not None:
            return known
        mapped = self.overrides.get(source)
        if mapped is None:
            mapped = canonical_symbol(source)
        if len(self._cache) < _CACHE_MAX:
            self._cache[source] = mapped
        return mapped


def parse_overrides(text: str, origin: str = "symbol map") -> dict[str, str]:
    """`source=canonical` lines; blank lines and `#` comments skipped, spaces trimmed.

    Plain lines rather than TOML: a TOML key with a dot (`HK.00700 = ...`) silently means
    a nested table unless quoted, the very mistake a symbol list invites.
    """
    overrides: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        source, sep, target = (part.strip() for part in content.partition("="))
        if not sep or not source or not target:
            raise ValueError(f"{origin}:{number}: expected source=canonical, got {line!r}")
        if not is_valid_symbol(target):
            raise ValueError(f"{origin}:{number}: {target!r} is not a valid symbol")
        if overrides.get(source, target) != target:
            raise ValueError(
                f"{origin}:{number}: {source} is mapped twice ({overrides[source]}, {target})"
            )
        overrides[source] = target
    return overrides


def load_overrides(path: Path) -> dict[str, str]:
    """`parse_overrides` of a file; ValueError (with the path) if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--symbol-map {path}: {exc}") from None
    return parse_overrides(text, str(path))
