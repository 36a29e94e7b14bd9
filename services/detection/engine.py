"""All detectors for a rules file, wired as the contract orders them.

The backtest drives this directly. The streaming processor splits the same pieces over
Faust tables (`SymbolTracker` by symbol, `PairTracker` and `AhTracker` by pair), built
by the same `Trackers`, and runs the very same `update` steps, so the two cannot
disagree.
"""

from __future__ import annotations

from schemas.signals import AnySignal
from schemas.tick import Tick
from services.detection.ah_premium import AhTracker
from services.detection.day_moves import DayMoves
from services.detection.divergence import PairTracker
from services.detection.price_level import LastPrices, LevelBook
from services.detection.price_level import signals as level_signals
from services.detection.record_high import BarOutcome, Late, SymbolTracker
from services.detection.rules import Rules
from services.detection.timeline import to_us
from services.detection.trackers import Trackers

# A symbol's record-high tracker, its day moves (None: off), its pairs and its listings
# (None: none).
_Slot = tuple[SymbolTracker, DayMoves | None, list[PairTracker] | None, list[AhTracker] | None]


class Engine:
    """Symbol trackers created on first sight; one pair tracker per configured pair."""

    def __init__(self, rules: Rules, levels: LevelBook | None = None) -> None:
        """`levels`: subscribers' price levels to check (None: none, and no p is kept)."""
        self.rules = rules
        self.trackers = Trackers(rules)
        self.zones = self.trackers.zones
        self.symbols: dict[str, SymbolTracker] = {}
        self.pairs = [self.trackers.pair(rule.name) for rule in rules.divergence]
        self.pairs_by_symbol = self._index(self.pairs)
        self.listings = [self.trackers.listing(rule.name) for rule in rules.ah]
        self.listings_by_symbol = self._index_listings(self.listings)
        # Day moves (previous close, price_move, limit_hit, volume_spike): None when off.
        self.day_config = self.trackers.day_moves
        self.day_moves: dict[str, DayMoves] = {}
        self.levels = levels
        self.last_prices = LastPrices()
        # symbol -> everything its tick touches, found with one lookup: the hot path's
        # dict lookups cost as much as a detector's quiet check.
        self._slots: dict[str, _Slot] = {}

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
            tracker = self.trackers.symbol(symbol)
            self.symbols[symbol] = tracker
        return tracker

    def moves(self, symbol: str) -> DayMoves:
        """The symbol's day-move tracker (only when a day-move table is configured)."""
        moves = self.day_moves.get(symbol)
        if moves is None:
            moves = self.day_moves[symbol] = self.trackers.moves(symbol)
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

    def _slot(self, symbol: str) -> _Slot:
        slot = self._slots[symbol] = (
            self.tracker(symbol),
            None if self.day_config is None else self.moves(symbol),
            self.pairs_by_symbol.get(symbol) or None,
            self.listings_by_symbol.get(symbol) or None,
        )
        return slot

    def process_values(
        self,
        symbol: str,
        ts_us: int,
        price: float,
        now: float | None = None,
        volume: int = 0,
        kind: str = "trade",
    ) -> Late | list[AnySignal]:
        slot = self._slots.get(symbol)
        if slot is None:
            slot = self._slot(symbol)
        tracker, moves, pairs, listings = slot
        result = tracker.update(ts_us, price)
        if result is None:
            out: list[AnySignal] = []
        elif isinstance(result, Late):
            return result
        else:
            out = [result]
        if moves is not None:
            day_signals = moves.update(ts_us, price, volume, kind)
            if day_signals:
                out.extend(day_signals)
        levels = self.levels
        if levels is not None:
            # p is every accepted tick's, levels or not: one armed later needs it.
            previous = self.last_prices.swap(symbol, price)
            fired = levels.crossed(symbol, previous, price)
            if fired and previous is not None:
                out.extend(level_signals(fired, tracker.clock.datetime(ts_us), previous, price))
        if pairs is not None:
            for pair in pairs:
                out.extend(pair.update(symbol, ts_us, price, now))
        if listings is not None:
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
