"""What the naive references share, written from docs/signals.md: each symbol's exchange
zone by suffix, the per-symbol lateness gate in front of the pair detectors, and the
open/close hysteresis of divergences and A/H premiums.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

SUFFIX_ZONES = {".HK": "Asia/Hong_Kong", ".SH": "Asia/Shanghai", ".SZ": "Asia/Shanghai"}


def zone_of(symbol: str, zones: Mapping[str, str] = SUFFIX_ZONES) -> tzinfo:
    # Case-sensitive, longest suffix first (docs/signals.md): `0700.hk` is UTC.
    for suffix in sorted(zones, key=len, reverse=True):
        if symbol.endswith(suffix):
            return ZoneInfo(zones[suffix])
    return UTC


def local_date(symbol: str, ts: datetime, zones: Mapping[str, str] = SUFFIX_ZONES) -> date:
    return ts.astimezone(zone_of(symbol, zones)).date()


def hysteresis(
    current: str | None, direction: str, *, beyond: bool, inside: bool
) -> tuple[str | None, list[tuple[str, str]]]:
    """(the open direction after this evaluation, the (phase, direction) of its signals).

    `beyond`: the size reaches the threshold (and any other opening condition holds);
    `inside`: it is back under threshold x hysteresis. An open state closes inside, and
    flips (close, then open) when beyond the other way.
    """
    if current is None:
        return (direction, [("open", direction)]) if beyond else (None, [])
    if inside:
        return None, [("close", current)]
    if beyond and direction != current:
        return direction, [("close", current), ("open", direction)]
    return current, []


def accept(
    accepted: dict[str, list[datetime]], symbol: str, ts: datetime, lateness_s: float
) -> bool:
    """Whether a tick passes its symbol's lateness (ts >= max accepted ts - lateness), and
    if so keep its ts among the symbol's accepted ones."""
    history = accepted.setdefault(symbol, [])
    if history and ts < max(history) - timedelta(seconds=lateness_s):
        return False
    history.append(ts)
    return True
