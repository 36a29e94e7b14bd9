"""Subscribers' own price levels: which armed levels a tick crosses (docs/signals.md).

`LevelBook` holds the armed levels, per symbol and direction, as thresholds kept sorted,
so a tick costs at most two binary searches and the levels it fires, not a look at every
level of its symbol (a symbol can carry thousands). The rule, with p the symbol's
previous accepted price: `above` fires when `p < X <= price`, `below` when
`p > X >= price`; firings in `level_id` order (as strings). The book does not keep p: the
caller does, beside the rest of its per-symbol state (the backtest's `Engine`; the
processor's symbol table), because p moves on every accepted tick of every symbol,
levels or not.

Most ticks cross nothing, so each symbol also remembers its *quiet band* around the last
price it was asked about: the nearest thresholds on either side. A tick from that price
to one inside the band fires nothing, by four float comparisons; only a tick that leaves
the band (or comes from another p, or follows an arm or disarm of the symbol) searches.

Arming the same `level_id` again replaces it (a changed level); `disarm` drops it.
`to_state`/`from_state` give it as JSON-friendly data, versioned.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from schemas.level import Level
from schemas.signals import LevelDirection, PriceLevel
from services.detection.state import check_version

__all__ = ["ArmedLevel", "LastPrices", "LevelBook", "crossing", "signals"]

STATE_VERSION = 1


class ArmedLevel(NamedTuple):
    """One armed level: all the detector needs of it."""

    level_id: str
    symbol: str
    direction: LevelDirection
    price: float
    subscription_id: str | None

    @classmethod
    def of(cls, level: Level) -> ArmedLevel:
        return cls(
            level.level_id, level.symbol, level.direction, level.price, level.subscription_id
        )


_NONE: list[ArmedLevel] = []  # what `crossed` returns for a quiet tick: never changed


def crossing(direction: LevelDirection, level: float, previous: float | None, price: float) -> bool:
    """The contract's rule for one level, as written; the book answers the same in bulk."""
    if previous is None:
        return False
    if direction == "above":
        return previous < level <= price
    return previous > level >= price


@dataclass(slots=True)
class _Side:
    """One direction's levels of one symbol, sorted by (price, level_id).

    `prices` mirrors `keys`' first items, so `bisect` compares plain floats.
    """

    keys: list[tuple[float, str]] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)

    def add(self, price: float, level_id: str) -> None:
        key = (price, level_id)
        i = bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.prices.insert(i, price)

    def remove(self, price: float, level_id: str) -> None:
        i = bisect_left(self.keys, (price, level_id))
        del self.keys[i]
        del self.prices[i]


@dataclass(slots=True)
class _SymbolLevels:
    above: _Side = field(default_factory=_Side)
    below: _Side = field(default_factory=_Side)
    # [q, a_lo, a_hi, b_lo, b_hi] for the last price q asked about: no `above` threshold
    # in (a_lo, a_hi) and a_lo <= q < a_hi; no `below` one in (b_lo, b_hi) and
    # b_lo < q <= b_hi. None until computed, and after every arm or disarm.
    band: list[float] | None = None

    def __bool__(self) -> bool:
        return bool(self.above.keys or self.below.keys)

    def quiet_band(self, q: float) -> list[float]:
        up, down = self.above.prices, self.below.prices
        i, j = bisect_right(up, q), bisect_left(down, q)
        return [
            q,
            up[i - 1] if i else -math.inf,
            up[i] if i < len(up) else math.inf,
            down[j - 1] if j else -math.inf,
            down[j] if j < len(down) else math.inf,
        ]


class LevelBook:
    """The armed levels of every symbol; `arm`, `disarm` and `crossed` are its steps."""

    __slots__ = ("_by_symbol", "_levels")

    def __init__(self, levels: list[ArmedLevel] | None = None) -> None:
        self._levels: dict[str, ArmedLevel] = {}
        self._by_symbol: dict[str, _SymbolLevels] = {}
        for level in levels or ():
            self.arm(level)

    def __len__(self) -> int:
        return len(self._levels)

    def __contains__(self, level_id: object) -> bool:
        return level_id in self._levels

    def get(self, level_id: str) -> ArmedLevel | None:
        return self._levels.get(level_id)

    def has_symbol(self, symbol: str) -> bool:
        """True if `symbol` has at least one armed level (the hot path's cheap test)."""
        return symbol in self._by_symbol

    def levels(self) -> list[ArmedLevel]:
        """Every armed level, in `level_id` order."""
        return [self._levels[k] for k in sorted(self._levels)]

    # -- arming -------------------------------------------------------------------------

    def arm(self, level: ArmedLevel) -> None:
        """Arm `level`, replacing the armed level of the same id if there is one."""
        if level.level_id in self._levels:
            self.disarm(level.level_id)
        self._levels[level.level_id] = level
        sides = self._by_symbol.get(level.symbol)
        if sides is None:
            sides = self._by_symbol[level.symbol] = _SymbolLevels()
        side = sides.above if level.direction == "above" else sides.below
        side.add(level.price, level.level_id)
        sides.band = None

    def disarm(self, level_id: str) -> bool:
        """Disarm a level; False if none of that id was armed (a tombstone seen twice)."""
        level = self._levels.pop(level_id, None)
        if level is None:
            return False
        sides = self._by_symbol[level.symbol]
        side = sides.above if level.direction == "above" else sides.below
        side.remove(level.price, level_id)
        sides.band = None
        if not sides:
            del self._by_symbol[level.symbol]
        return True

    def apply(self, level_id: str, level: Level | None) -> None:
        """One record of the levels topic: a level arms it, a tombstone (None) disarms."""
        if level is None:
            self.disarm(level_id)
        else:
            self.arm(ArmedLevel.of(level))

    # -- the step -----------------------------------------------------------------------

    def crossed(self, symbol: str, previous: float | None, price: float) -> list[ArmedLevel]:
        """The levels of `symbol` a move from `previous` to `price` fires, by level_id.

        The list returned when nothing fires is shared: do not change it.
        """
        sides = self._by_symbol.get(symbol)
        if sides is None or previous is None:
            return _NONE
        band = sides.band
        if (
            band is not None
            and band[0] == previous
            and band[1] <= price < band[2]
            and band[3] < price <= band[4]
        ):
            band[0] = price  # the same band holds around the new price
            return _NONE
        sides.band = sides.quiet_band(price)
        if price > previous:
            # above: previous < X <= price
            side = sides.above
            lo, hi = bisect_right(side.prices, previous), bisect_right(side.prices, price)
        elif price < previous:
            # below: price <= X < previous
            side = sides.below
            lo, hi = bisect_left(side.prices, price), bisect_left(side.prices, previous)
        else:
            return _NONE
        if lo == hi:
            return _NONE
        ids = sorted(level_id for _, level_id in side.keys[lo:hi])
        return [self._levels[level_id] for level_id in ids]

    def evaluate(
        self, symbol: str, ts: datetime, previous: float | None, price: float
    ) -> list[PriceLevel]:
        """The price_level signals of one accepted tick of `symbol`, in contract order."""
        fired = self.crossed(symbol, previous, price)
        if not fired or previous is None:
            return []
        return signals(fired, ts, previous, price)

    # -- serialisation ------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "levels": [list(level) for level in self.levels()]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LevelBook:
        check_version(state, "price-level book", (STATE_VERSION,))
        return cls(
            [
                ArmedLevel(str(i), str(s), "above" if d == "above" else "below", float(x), sub)
                for i, s, d, x, sub in state["levels"]
            ]
        )


def signals(
    fired: list[ArmedLevel], ts: datetime, previous: float, price: float
) -> list[PriceLevel]:
    """The signals of the levels one tick (`previous` -> `price` at `ts`) fired."""
    return [
        PriceLevel(
            symbol=level.symbol,
            ts=ts,
            price=price,
            previous_price=previous,
            level=level.price,
            direction=level.direction,
            subscription_id=level.subscription_id,
            level_id=level.level_id,
        )
        for level in fired
    ]


class LastPrices:
    """p per symbol: the price of its last accepted tick (levels or not), for `LevelBook`."""

    __slots__ = ("prices",)

    def __init__(self, prices: dict[str, float] | None = None) -> None:
        self.prices: dict[str, float] = dict(prices or {})

    def swap(self, symbol: str, price: float) -> float | None:
        """Record `price` as the symbol's latest; return the one before (None: first)."""
        previous = self.prices.get(symbol)
        self.prices[symbol] = price
        return previous
