"""A-share boards by code and their daily price limits (docs/signals.md, limit_hit).

A board is read from the symbol alone: exactly six digits, then the exchange suffix,
case-sensitive. Anything else (Hong Kong, indices such as `000688.SH`, funds) has no
daily limit, so `board_of` answers None for it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Literal

Board = Literal["main", "star", "chinext", "bse"]

_CENT = Decimal("0.01")
# Enough digits that c * (1 + p/100) is exact for any two float reprs (17 significant
# digits each, exponents up to 308): the contract allows one rounding only, the last.
_EXACT_DIGITS = 800


def board_of(symbol: str) -> Board | None:
    """The board of an A-share code such as `688981.SH`, or None for anything else."""
    if len(symbol) != 9 or symbol[6] != "." or not (symbol[:6].isdigit() and symbol.isascii()):
        return None
    code, suffix = symbol[:6], symbol[7:]
    if suffix == "SH":
        if code.startswith("60"):
            return "main"
        if code.startswith(("688", "689")):
            return "star"
    elif suffix == "SZ":
        if code.startswith(("000", "001", "002", "003")):
            return "main"
        if code.startswith(("300", "301")):
            return "chinext"
    elif suffix == "BJ" and code.startswith(("4", "8", "92")):
        return "bse"
    return None


def limit_prices(previous_close: float, pct: float) -> tuple[float, float]:
    """(upper, lower) limit: c * (1 +/- p/100) on the decimal text of c and p, exact until
    one final rounding half up to 0.01 (as the exchanges publish them)."""
    with localcontext() as ctx:
        ctx.prec = _EXACT_DIGITS
        c = Decimal(repr(previous_close))
        p = Decimal(repr(pct)) / 100
        up = (c * (1 + p)).quantize(_CENT, rounding=ROUND_HALF_UP)
        down = (c * (1 - p)).quantize(_CENT, rounding=ROUND_HALF_UP)
    return float(up), float(down)
