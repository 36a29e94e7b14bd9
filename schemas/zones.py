"""Exchange time zones by symbol suffix: the part of the contract that dates a tick."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from zoneinfo import ZoneInfo

DEFAULT_ZONES: dict[str, str] = {
    ".HK": "Asia/Hong_Kong",
    ".SH": "Asia/Shanghai",
    ".SZ": "Asia/Shanghai",
}
UTC_NAME = "UTC"


class ExchangeZones:
    """Maps a symbol to its exchange zone by the longest matching suffix; others are UTC.

    Suffixes match case-sensitively, as the contract says: `0700.hk` is not `.HK`, so UTC.
    """

    __slots__ = ("_cache", "_suffixes", "names")

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self.names: dict[str, str] = dict(DEFAULT_ZONES if names is None else names)
        # Longest suffix first so ".X.HK"-style overrides win over ".HK".
        self._suffixes: list[tuple[str, ZoneInfo]] = sorted(
            ((s, ZoneInfo(z)) for s, z in self.names.items()),
            key=lambda item: -len(item[0]),
        )
        self._cache: dict[str, tzinfo] = {}

    def zone_for(self, symbol: str) -> tzinfo:
        zone = self._cache.get(symbol)
        if zone is None:
            zone = ZoneInfo(UTC_NAME)
            for suffix, candidate in self._suffixes:
                if symbol.endswith(suffix):
                    zone = candidate
                    break
            self._cache[symbol] = zone
        return zone

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExchangeZones) and other.names == self.names

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.names.items())))


DEFAULT_EXCHANGE_ZONES = ExchangeZones()
