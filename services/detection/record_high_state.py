"""A symbol tracker's state as JSON-friendly data, and back (the processor's tables).

Kept apart from the tracker's per-tick code: versions and formats change here, never on
the hot path.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from services.detection.state import check_version

if TYPE_CHECKING:
    from services.detection.record_high import SymbolTracker

# 2 keeps debounce memory per day; 1 (one [day, price] per window) is still read.
STATE_VERSION = 2
STATE_VERSIONS = (1, 2)


def state_of(tracker: SymbolTracker) -> dict[str, Any]:
    return {
        "v": STATE_VERSION,
        "latest_us": tracker.latest_us,
        "ath": tracker.ath,
        "ath_us": tracker.ath_us,
        "days": [[d, e[0], e[1]] for d, e in tracker.days.items()],
        "deque": list(tracker._deque),
        "max_day": tracker.max_day,
        "debounce": {w: [[d, p] for d, p in m.items()] for w, m in tracker.debounce.items()},
        "pending": None
        if tracker.pending is None
        else [[d, h] for d, h in tracker.pending.items()],
        "first_day": tracker.first_day,
        "bar_days": [tracker.bar_days[0], format(tracker.bar_days[1], "x")],
        "overlap": tracker.overlap,
    }


def restore(tracker: SymbolTracker, state: dict[str, Any]) -> None:
    """Fill a fresh tracker from `state` (StateVersionError for an unknown version)."""
    check_version(state, "record-high symbol", STATE_VERSIONS)
    tracker.latest_us = state["latest_us"]
    tracker.ath = float(state["ath"])
    tracker.ath_us = int(state["ath_us"])
    tracker.days = {int(d): [float(p), int(u)] for d, p, u in state["days"]}
    tracker._deque = deque(int(d) for d in state["deque"])
    tracker.max_day = int(state["max_day"])
    tracker._today = tracker.days.get(tracker.max_day, [0.0, 0])
    tracker.debounce = {w: _debounce_memory(m) for w, m in state["debounce"].items()}
    pending = state.get("pending")
    tracker.pending = None if pending is None else {int(d): float(h) for d, h in pending}
    first_day = state.get("first_day")
    if first_day is None and tracker.latest_us is not None:
        first_day = min(tracker.days, default=None)  # a state from before history
    tracker.first_day = first_day
    lo, bits = state.get("bar_days", [0, "0"])
    tracker.bar_days = (int(lo), int(bits, 16))
    tracker.overlap = int(state.get("overlap", 0))


def _debounce_memory(saved: list[Any]) -> dict[int, float]:
    """Per-day debounce memory; a version-1 state held one [day, price] pair per window."""
    if len(saved) == 2 and not isinstance(saved[0], list):
        return {int(saved[0]): float(saved[1])}
    return {int(d): float(p) for d, p in saved}
