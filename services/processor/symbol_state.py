"""A symbol's entry in the symbol table: how far its ticks were applied, and its tracker.

The table holds it as JSON (`to_json`), written by the symbol and history stages and read
back by both, and by a worker that recovers the table from its changelog.

Versions of the table value (the tracker's state inside has its own, see
`SymbolTracker.to_state`):
- 1, no "v": `{"p", "o", "i", "tracker"}`; "i" is missing in states written before tick
  bundles (a single tick's index, 0).
- 2: the same with `"v": 2`, and "i" always written.

A version-1 reader ignores "v", so a rollback still reads version 2. A detector added to
the symbol's state later becomes an optional field here, written under its own key with
its own "v" and read with `.get` (None in older states): readers ignore keys they do not
know, so that needs no new table version. The day moves are the first: `"moves"`, the
`DayMoves` state, written while a day-move table is configured. A state without it (an
older one, or one written while they were off) starts them afresh. The symbol's last
accepted price is the second, `"last"`: p of the price levels (docs/signals.md,
price_level), kept for every symbol, levels or not, since a level armed later needs it. A
state without it gives no p, so the first tick after it crosses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.detection.day_moves import DayMoves
from services.detection.record_high import SymbolTracker
from services.detection.state import StateVersionError
from services.detection.trackers import Trackers

VERSION = 2


@dataclass(slots=True)
class SymbolState:
    """A symbol's tracker, and the place on `ticks` (partition, offset, index in its
    record) of the last tick applied to it: a replay skips every tick up to there."""

    partition: int
    offset: int
    index: int
    tracker: SymbolTracker
    # The symbol's day moves; None while no day-move table is configured.
    moves: DayMoves | None = None
    # The price of its last accepted tick (p of the price levels); None before any.
    last_price: float | None = None

    @classmethod
    def before_ticks(cls, tracker: SymbolTracker, moves: DayMoves | None) -> SymbolState:
        """A state that history made before any tick of its symbol was read."""
        return cls(-1, -1, 0, tracker, moves)

    def to_json(self) -> dict[str, Any]:
        return self.encode(
            self.partition, self.offset, self.index, self.tracker, self.moves, self.last_price
        )

    @staticmethod
    def encode(
        partition: int,
        offset: int,
        index: int,
        tracker: SymbolTracker,
        moves: DayMoves | None = None,
        last_price: float | None = None,
    ) -> dict[str, Any]:
        """`to_json` of the state these make, without building it: the symbol stage writes
        one per symbol per batch."""
        value = {
            "v": VERSION,
            "p": partition,
            "o": offset,
            "i": index,
            "tracker": tracker.to_state(),
        }
        if moves is not None:
            value["moves"] = moves.to_state()
        if last_price is not None:
            value["last"] = last_price
        return value

    @classmethod
    def from_json(cls, symbol: str, value: dict[str, Any], trackers: Trackers) -> SymbolState:
        """The state a table value of either version describes; StateVersionError for a
        version this code cannot read, here or in the tracker's state."""
        version = value.get("v", 1)
        if version == 1:
            index = value.get("i", 0)
        elif version == VERSION:
            index = value["i"]
        else:
            raise StateVersionError(
                f"symbol table state version {version!r} is not one this code reads (1, 2)"
            )
        tracker = trackers.symbol(symbol, value["tracker"])
        moves = None if trackers.day_moves is None else trackers.moves(symbol, value.get("moves"))
        return cls(value["p"], value["o"], index, tracker, moves, last_price(value))

    @staticmethod
    def holds(value: dict[str, Any], partition: int, offset: int, index: int) -> bool:
        """Whether the table value `value` already holds the tick at (partition, offset,
        index). Read from the position alone, with no tracker built: a replay asks it for
        every tick it skips. Both versions keep the position under the same keys."""
        return value["p"] == partition and (offset, index) <= (value["o"], value.get("i", 0))


def last_price(value: dict[str, Any]) -> float | None:
    """The last accepted price a table value holds (None in states written before it)."""
    last = value.get("last")
    return None if last is None else float(last)
