"""Time arithmetic of the detectors: the tick's instants (`schemas.timeline`), and how
many local days of history the lateness rule keeps reachable."""

from __future__ import annotations

from schemas.timeline import (
    EPOCH,
    EPOCH_ORDINAL,
    ONE_US,
    US_PER_DAY,
    US_PER_S,
    ZoneClock,
    from_us,
    to_us,
)

__all__ = [
    "EPOCH",
    "EPOCH_ORDINAL",
    "ONE_US",
    "US_PER_DAY",
    "US_PER_S",
    "ZoneClock",
    "from_us",
    "lateness_days",
    "to_us",
]


def lateness_days(lateness_us: int) -> int:
    """Whole local days a tick may lag the newest one: bounds how much history must be kept."""
    return -(-lateness_us // US_PER_DAY) + 2
