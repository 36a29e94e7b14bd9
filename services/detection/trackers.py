"""Building the detectors' trackers from the rules: new, or restored from their state.

The one place a tracker is made, so the backtest's engine and the processor's stages
cannot build one differently (another clock, another lateness), and a tracker's state
is only ever read by the class that wrote it.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from schemas.zones import ExchangeZones
from services.detection.ah_premium import AhTracker
from services.detection.day_moves import DayMoves, DayMovesConfig, day_moves_config
from services.detection.divergence import PairTracker
from services.detection.record_high import RecordHighConfig, SymbolTracker
from services.detection.rules import AhRule, DivergenceRule, Rules
from services.detection.timeline import US_PER_S, ZoneClock


def record_high_config(rules: Rules) -> RecordHighConfig:
    return RecordHighConfig(
        windows=tuple(rules.record_high.windows),
        step_pct=rules.record_high.step_pct,
        lateness_us=round(rules.ticks.allowed_lateness_s * US_PER_S),
    )


class Clocks:
    """One `ZoneClock` per exchange zone, shared by every tracker in a process."""

    def __init__(self, zones: ExchangeZones) -> None:
        self.zones = zones
        self._by_zone: dict[tzinfo, ZoneClock] = {}
        self._by_symbol: dict[str, ZoneClock] = {}

    def for_symbol(self, symbol: str) -> ZoneClock:
        clock = self._by_symbol.get(symbol)
        if clock is None:
            zone = self.zones.zone_for(symbol)
            clock = self._by_zone.setdefault(zone, ZoneClock(zone))
            self._by_symbol[symbol] = clock
        return clock


class Trackers:
    """Makes the trackers a rules file calls for: a symbol's (its record highs, and its
    day moves when they are on), a divergence pair's (by pair name) and an A/H listing's
    (by listing name).

    Each method returns a new tracker, or with `state` (what the tracker's `to_state`
    wrote, JSON-decoded) the tracker that state describes; a state of a version the class
    cannot read raises `StateVersionError`. A name the rules do not configure is a
    KeyError.
    """

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.zones = rules.exchange_zones()
        self.clocks = Clocks(self.zones)
        self.record_high = record_high_config(rules)
        self.lateness_us = round(rules.ticks.allowed_lateness_s * US_PER_S)
        self._pairs: dict[str, DivergenceRule] = {rule.name: rule for rule in rules.divergence}
        self._listings: dict[str, AhRule] = {rule.name: rule for rule in rules.ah}
        # The day moves' settings; None when none of their tables is configured.
        self.day_moves: DayMovesConfig | None = day_moves_config(rules)

    def symbol(self, symbol: str, state: dict[str, Any] | None = None) -> SymbolTracker:
        clock = self.clocks.for_symbol(symbol)
        if state is None:
            return SymbolTracker(symbol, self.record_high, clock)
        return SymbolTracker.from_state(symbol, self.record_high, clock, state)

    def moves(self, symbol: str, state: dict[str, Any] | None = None) -> DayMoves:
        """A symbol's day-move tracker (only when a day-move table is configured)."""
        assert self.day_moves is not None
        clock = self.clocks.for_symbol(symbol)
        if state is None:
            return DayMoves(symbol, self.day_moves, clock)
        return DayMoves.from_state(symbol, self.day_moves, clock, state)

    def pair(self, name: str, state: dict[str, Any] | None = None) -> PairTracker:
        rule = self._pairs[name]
        clocks = (self.clocks.for_symbol(rule.a), self.clocks.for_symbol(rule.b))
        if state is None:
            return PairTracker(rule, clocks, self.lateness_us)
        return PairTracker.from_state(rule, clocks, self.lateness_us, state)

    def listing(self, name: str, state: dict[str, Any] | None = None) -> AhTracker:
        rule = self._listings[name]
        clocks = tuple(self.clocks.for_symbol(leg) for leg in rule.legs)
        if state is None:
            return AhTracker(rule, clocks)
        return AhTracker.from_state(rule, clocks, state)
