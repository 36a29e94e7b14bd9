"""A pair's (or A/H listing's) entry in the pair table: the ticks applied, and its tracker.

The re-keyed topic carries each forwarded tick's place on `ticks` (source partition,
offset, index in its record); the pair stage keeps the furthest it applied per source
partition and drops anything at or before it, which a symbol-stage replay re-sends.

Versions of the table value (the tracker's state inside has its own):
- 1, no "v": `{"src", "tracker"}`, "src" mapping a source partition (a string) to
  `[offset, index]`, or to a bare offset in states written before tick bundles.
- 2: `{"v": 2, "src", "tracker"}`, always `[offset, index]`.

A version-1 reader ignores "v", so a rollback still reads version 2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.detection.ah_premium import AhTracker
from services.detection.divergence import PairTracker
from services.detection.state import StateVersionError

VERSION = 2

# source partition (as JSON keys it) -> (offset, index) of the furthest tick applied
Applied = dict[str, tuple[int, int]]
# Makes the key's tracker: new, or from the state its `to_state` wrote.
TrackerOf = Callable[[dict[str, Any] | None], PairTracker | AhTracker]


@dataclass(slots=True)
class PairState:
    """A pair's (or listing's) tracker, and per source partition of `ticks` the place of
    the furthest tick applied to it: the pair stage drops any tick at or before it."""

    applied: Applied
    tracker: PairTracker | AhTracker

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "src": {part: [offset, index] for part, (offset, index) in self.applied.items()},
            "tracker": self.tracker.to_state(),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any], tracker_of: TrackerOf) -> PairState:
        """The state a table value of either version describes; StateVersionError for a
        version this code cannot read, here or in the tracker's state."""
        return cls(cls.applied_of(value), tracker_of(value["tracker"]))

    @staticmethod
    def applied_of(value: dict[str, Any]) -> Applied:
        """The source positions of a table value alone (StateVersionError as `from_json`)."""
        version = value.get("v", 1)
        if version == 1:
            return {
                part: (pos, 0) if isinstance(pos, int) else (int(pos[0]), int(pos[1]))
                for part, pos in value["src"].items()
            }
        if version == VERSION:
            return {part: (int(o), int(i)) for part, (o, i) in value["src"].items()}
        raise StateVersionError(
            f"pair table state version {version!r} is not one this code reads (1, 2)"
        )
