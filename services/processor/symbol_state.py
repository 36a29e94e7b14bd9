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
know, so that needs no new table version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.detection.record_high import SymbolTracker
from services.detection.state import StateVersionError
from services.detection.trackers import Trackers

VERSION = 2


@dataclass(frozen=True, slots=True)
class Position:
    """A tick's place on the `ticks` topic: partition, offset, index in its record."""

    partition: int
    offset: int
    index: int

    def holds(self, partition: int, offset: int, index: int) -> bool:
        """Whether the tick at (partition, offset, index) was applied up to this position."""
        return partition == self.partition and (offset, index) <= (self.offset, self.index)


# A state that history made before any tick of the symbol was read.
NO_TICK = Position(-1, -1, 0)


@dataclass(slots=True)
class SymbolState:
    position: Position
    tracker: SymbolTracker

    def to_json(self) -> dict[str, Any]:
        position = self.position
        return {
            "v": VERSION,
            "p": position.partition,
            "o": position.offset,
            "i": position.index,
            "tracker": self.tracker.to_state(),
        }

    @classmethod
    def from_json(cls, symbol: str, value: dict[str, Any], trackers: Trackers) -> SymbolState:
        """The state a table value of either version describes; StateVersionError for a
        version this code cannot read, here or in the tracker's state."""
        return cls(cls.position_of(value), trackers.symbol(symbol, value["tracker"]))

    @staticmethod
    def position_of(value: dict[str, Any]) -> Position:
        """The position alone (cheap: a replayed tick is skipped by it, no tracker built)."""
        version = value.get("v", 1)
        if version == 1:
            index = value.get("i", 0)
        elif version == VERSION:
            index = value["i"]
        else:
            raise StateVersionError(
                f"symbol table state version {version!r} is not one this code reads (1, 2)"
            )
        return Position(value["p"], value["o"], index)
