"""All detectors for a rules file, wired as the contract orders them.

The backtest drives this directly. The streaming processor splits the same pieces over
Faust tables (`SymbolTracker` by symbol, `PairTracker` by pair) but runs the very same
`update` steps, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import Any

from schemas.signals import AnySignal
from schemas.tick import Tick
from schemas.zones import ExchangeZones
from services.detection.ah_premium import AhTracker
from services.detection.day_moves import DayMoves, day_moves_config
from services.detection.divergence import PairTracker
from services.detection.record_high import BarOutcome, Late, RecordHighConfig, SymbolTracker
from services.detection.rules import AhRule, DivergenceRule, Rules
from services.detection.timeline import US_PER_S, ZoneClock, to_us


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


def new_pair_tracker(rules: Rules, rule: DivergenceRule, clocks: Clocks) -> PairTracker:
    return PairTracker(
        rule,
        (clocks.for_symbol(rule.a), clocks.for_symbol(rule.b)),
        round(rules.ticks.allowed_lateness_s * US_PER_S),
    )


def new_ah_tracker(rule: AhRule, clocks: Clocks) -> AhTracker:
    return AhTracker(rule, tuple(clocks.for_symbol(leg) for leg in rule.legs))


class Engine:
    """Symbol trackers created on first sight; one pair tracker per configured pair."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.zones = rules.exchange_zones()
        self.clocks = Clocks(self.zones)
        self.config = record_high_config(rules)
        self.symbols: dict[str, SymbolTracker] = {}
        self.pairs = [new_pair_tracker(rules, rule, self.clocks) for rule in rules.divergence]
        self.pairs_by_symbol = self._index(self.pairs)
        self.listings = [new_ah_tracker(rule, self.clocks) for rule in rules.ah]
        self.listings_by_symbol = self._index_listings(self.listings)
        # Day moves (previous close, price_move, limit_hit, volume_spike): None when off.
        self.day_config = day_moves_config(rules)
        self.day_moves: dict[str, DayMoves] = {}

    def _index(self, pairs: list[PairTracker]) -> dict[str, list[PairTracker]]:
        by_name = {pair.name: pair for pair in pairs}
        return {
            symbol: [by_name[rule.name] for rule in rules]
            for symbol, rules in self.rules.pairs_of().items()
        }

    def _index_listings(self, listings: list[AhTracker]) -> dict[str, list[AhTracker]]:
        by_name = {listing.name: listing for listing in listings}
        return {
            symbol: [by_name[rule.name] for rule in rules]
            for symbol, rules in self.rules.listings_of().items()
        }

    def tracker(self, symbol: str) -> SymbolTracker:
        tracker = self.symbols.get(symbol)
        if tracker is None:
            tracker = SymbolTracker(symbol, self.config, self.clocks.for_symbol(symbol))
            self.symbols[symbol] = tracker
        return tracker

    def moves(self, symbol: str) -> DayMoves:
        """The symbol's day-move tracker (only when a day-move table is configured)."""
        moves = self.day_moves.get(symbol)
        if moves is None:
            assert self.day_config is not None
            moves = DayMoves(symbol, self.day_config, self.clocks.for_symbol(symbol))
            self.day_moves[symbol] = moves
        return moves

    def add_bar(
        self, symbol: str, day: int, high: float, close: float, volume: int | None = None
    ) -> BarOutcome:
        """One daily bar (local day ordinal) of history: seeds record highs, bases, and
        the previous close and daily volumes of the day moves."""
        outcome = self.tracker(symbol).add_bar(day, high)
        if outcome in ("held", "applied"):
            for pair in self.pairs_by_symbol.get(symbol, ()):
                pair.add_bar(symbol, day, close)
            if self.day_config is not None:
                self.moves(symbol).add_bar(day, close, volume)
        return outcome

    def overlapping_bars(self) -> int:
        """Bars dated on or after their symbol's first tick, ignored (ticks are the truth)."""
        return sum(t.overlap for t in self.symbols.values())

    def process(self, tick: Tick, now: float | None = None) -> Late | list[AnySignal]:
        """One tick in arrival order: `Late` if refused, else the signals it caused."""
        return self.process_values(
            tick.symbol, to_us(tick.ts), tick.price, now, tick.volume, tick.kind
        )

    def process_values(
        self,
        symbol: str,
        ts_us: int,
        price: float,
        now: float | None = None,
        volume: int = 0,
        kind: str = "trade",
    ) -> Late | list[AnySignal]:
        tracker = self.symbols.get(symbol)
        if tracker is None:
            tracker = self.tracker(symbol)
        result = tracker.update(ts_us, price)
        if isinstance(result, Late):
            return result
        out: list[AnySignal] = [] if result is None else [result]
        if self.day_config is not None:
            moves = self.day_moves.get(symbol)
            if moves is None:
                moves = self.moves(symbol)
            day_signals = moves.update(ts_us, price, volume, kind)
            if day_signals:
                out.extend(day_signals)
        pairs = self.pairs_by_symbol.get(symbol)
        if pairs:
            for pair in pairs:
                out.extend(pair.update(symbol, ts_us, price, now))
        listings = self.listings_by_symbol.get(symbol)
        if listings:
            for listing in listings:
                out.extend(listing.update(symbol, ts_us, price, now))
        return out

    def expire(self, now: float) -> list[AnySignal]:
        out: list[AnySignal] = []
        for pair in self.pairs:
            out.extend(pair.expire(now))
        for listing in self.listings:
            out.extend(listing.expire(now))
        return out

    def flush(self) -> list[AnySignal]:
        out: list[AnySignal] = []
        for pair in self.pairs:
            out.extend(pair.flush())
        for listing in self.listings:
            out.extend(listing.flush())
        return out

    def run(self, ticks: Iterable[Tick]) -> list[AnySignal]:
        """Every signal of a finite, already valid input (late ticks are skipped)."""
        out: list[AnySignal] = []
        for tick in ticks:
            result = self.process(tick)
            if not isinstance(result, Late):
                out.extend(result)
        out.extend(self.flush())
        return out

    # -- serialisation ----------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Every tracker's state, JSON-friendly (what the processor keeps in its tables)."""
        return {
            "symbols": {s: t.to_state() for s, t in self.symbols.items()},
            "pairs": {p.name: p.to_state() for p in self.pairs},
            "listings": {x.name: x.to_state() for x in self.listings},
        }

    @classmethod
    def from_state(cls, rules: Rules, state: dict[str, Any]) -> Engine:
        engine = cls(rules)
        for symbol, sstate in state["symbols"].items():
            engine.symbols[symbol] = SymbolTracker.from_state(
                symbol, engine.config, engine.clocks.for_symbol(symbol), sstate
            )
        restored = []
        for fresh in engine.pairs:
            pstate = state["pairs"].get(fresh.name)
            restored.append(
                fresh
                if pstate is None
                else PairTracker.from_state(fresh.rule, fresh.clocks, fresh.lateness_us, pstate)
            )
        engine.pairs = restored
        engine.pairs_by_symbol = engine._index(restored)
        listings = []
        for fresh_listing in engine.listings:
            lstate = state.get("listings", {}).get(fresh_listing.name)
            listings.append(
                fresh_listing
                if lstate is None
                else AhTracker.from_state(fresh_listing.rule, fresh_listing.clocks, lstate)
            )
        engine.listings = listings
        engine.listings_by_symbol = engine._index_listings(listings)
        return engine
