"""A naive price-level reference, written straight from docs/signals.md (price_level).

Every accepted tick of every symbol is kept in a plain list and every armed level is
looked at on every tick: no sorted thresholds, no bisection. The contract:

1. A tick is late (not accepted) when its ts is earlier than the latest accepted ts of
   its symbol by more than `allowed_lateness_s`.
2. p is the price of the symbol's last accepted tick before this one, in arrival order,
   whether or not a level existed then.
3. `above` fires when `p < X <= price`, `below` when `p > X >= price`; no p, no firing.
   A level fires again at every later crossing.
4. The firings of one tick are ordered by `level_id` as strings.
5. Arming an id again replaces the level; a disarmed level fires no more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class NLevel:
    level_id: str
    symbol: str
    direction: str
    price: float
    subscription_id: str | None


@dataclass
class NaivePriceLevels:
    lateness: timedelta = timedelta(seconds=5)
    levels: dict[str, NLevel] = field(default_factory=dict)
    accepted: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)

    def arm(self, level: NLevel) -> None:
        self.levels[level.level_id] = level

    def disarm(self, level_id: str) -> None:
        self.levels.pop(level_id, None)

    def tick(self, symbol: str, ts: datetime, price: float) -> list[dict[str, Any]] | str:
        """The firings of one tick (as dicts), or "late"."""
        earlier = self.accepted.setdefault(symbol, [])
        if earlier and ts < max(t for t, _ in earlier) - self.lateness:
            return "late"
        previous = earlier[-1][1] if earlier else None
        earlier.append((ts, price))
        fired: list[dict[str, Any]] = []
        if previous is None:
            return fired
        for level_id in sorted(self.levels):
            level = self.levels[level_id]
            if level.symbol != symbol:
                continue
            x = level.price
            up = level.direction == "above" and previous < x <= price
            down = level.direction == "below" and previous > x >= price
            if up or down:
                fired.append(
                    {
                        "kind": "price_level",
                        "symbol": symbol,
                        "ts": ts,
                        "price": price,
                        "previous_price": previous,
                        "level": x,
                        "direction": level.direction,
                        "subscription_id": level.subscription_id,
                        "level_id": level_id,
                    }
                )
        return fired
