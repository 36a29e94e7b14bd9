"""Snapshots to trades: a source that reports each listing's state (last price, the day's
cumulative volume) rather than each trade becomes ticks here (docs/feeds.md).

The rule, per symbol:

- a snapshot becomes a tick only when its price or its cumulative volume changed since
  the symbol's previous snapshot; a repeat of the same state is no trade;
- the tick's volume is the cumulative volume's increase, so the processor's sum of a
  day's tick volumes is the source's day volume; the first snapshot of a symbol carries
  the whole cumulative volume so far (the day's volume before we started watching);
- a cumulative volume lower than the previous one is a new day (the source reset its
  counter): the tick carries the new cumulative volume whole;
- a price change with no volume change is a tick of volume 0: the price moved (an
  index, or a snapshot taken between two counts of a vendor's volume).

Used by the Yahoo adapter (each message a snapshot with `day_volume`) and the akshare
poller. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Symbols whose last state is remembered; a poller watches a fixed list and a stream a
# subscribed one, so this only bounds a source that sends ever new symbols.
_SYMBOLS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One listing's state as a source reported it: `ts` is what the tick's `ts` takes
    (epoch milliseconds, or ISO 8601 with or without an offset: without one it is read
    in the symbol's exchange zone), `volume` the day's cumulative volume in shares."""

    symbol: str
    ts: Any
    price: Any
    volume: int
    kind: str = "trade"


@dataclass(frozen=True, slots=True)
class _Last:
    price: Any
    volume: int


def problem(snapshot: Snapshot) -> tuple[str, str] | None:
    """(tick field, why) if the snapshot's price or volume is unusable, else None.

    Checked before `SnapshotTrades.trade`: a bad snapshot must not move the remembered
    state, or the next good one's volume delta would be measured from garbage.
    """
    price = snapshot.price
    if isinstance(price, bool) or not isinstance(price, int | float):
        return "price", f"not a number ({price!r})"
    if not (math.isfinite(price) and price > 0):
        return "price", f"must be a finite number > 0, got {price!r}"
    volume = snapshot.volume
    if isinstance(volume, bool) or not isinstance(volume, int) or volume < 0:
        return "volume", f"the cumulative volume must be a whole number >= 0, got {volume!r}"
    return None


class SnapshotTrades:
    """The rule above, one snapshot at a time; remembers each symbol's last state."""

    def __init__(self, symbols_max: int = _SYMBOLS_MAX) -> None:
        self.symbols_max = symbols_max
        self.last: dict[str, _Last] = {}
        self.resets = 0  # new days seen (a cumulative volume that went down)

    def trade(self, snapshot: Snapshot) -> dict[str, Any] | None:
        """The tick's fields for `snapshot` (one `problem` passed), or None when nothing
        changed."""
        last = self.last.get(snapshot.symbol)
        volume = snapshot.volume
        if last is None:
            delta = volume
        elif volume < last.volume:
            self.resets += 1
            delta = volume
        else:
            delta = volume - last.volume
            if delta == 0 and snapshot.price == last.price:
                return None
        if last is not None or len(self.last) < self.symbols_max:
            self.last[snapshot.symbol] = _Last(snapshot.price, volume)
        return {
            "symbol": snapshot.symbol,
            "ts": snapshot.ts,
            "price": snapshot.price,
            "volume": delta,
            "kind": snapshot.kind,
        }
