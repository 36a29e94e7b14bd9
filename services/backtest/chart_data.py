"""What `marketsignal backtest --plot` charts, gathered during the run; and which subjects.

Kept apart from `charts.py` so the backtest imports no matplotlib (over a second of
start-up) unless charts are asked for.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, tzinfo
from typing import Any, NamedTuple

from schemas.signals import AnySignal, LimitHit, PriceMove, VolumeSpike
from services.detection.day_moves import DayMoves
from services.detection.engine import Engine
from services.detection.price_level import ArmedLevel, LevelBook
from services.detection.rules import Rules
from services.subscriptions.matching import symbol_matches

DEFAULT_LIMIT = 12

# A daily history bar: exchange-local date, high, close.
Bar = tuple[date, float, float]
Key = tuple[str, str]  # (kind, subject)

# The kinds of one symbol, in the order `choose` takes them round by round: the levels the
# user set (`--levels`) first, as they were asked for by name.
SYMBOL_KINDS = ("price_level", "limit_hit", "price_move", "volume_spike", "record_high")


class DayState(NamedTuple):
    """What a symbol's day moves judged its ticks against, constant over a run of ticks."""

    day: int  # the current date (day ordinal)
    prev_close: float
    prev_day: int  # the previous close's date (day ordinal)
    band: tuple[float, float] | None  # (upper, lower) limit, None: no limit
    average_volume: float | None  # the volume baseline, None: not evaluated


@dataclass
class DayTrace:
    """A symbol's day moves at every evaluated tick (a tick of its current date with a
    previous close): instant, price and the date's volume so far, in parallel lists
    (a long run keeps no tuple per tick), and the state they were judged against."""

    us: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    volume: list[int] = field(default_factory=list)
    # (index of the first tick, state): a new entry only when the state changes
    states: list[tuple[int, DayState]] = field(default_factory=list)

    def runs(self) -> list[tuple[DayState, int, int]]:
        """(state, first index, end index) of each run of ticks judged alike."""
        ends = [start for start, _ in self.states[1:]] + [len(self.us)]
        return [(state, start, end) for (start, state), end in zip(self.states, ends, strict=True)]


@dataclass
class ChartData:
    """What the charts need, gathered while the backtest runs."""

    rules: Rules
    ticks: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    signals: dict[Key, list[AnySignal]] = field(default_factory=dict)
    # (kind, subject) -> the tracker's evaluation trace (see PairTracker / AhTracker)
    traces: dict[Key, list[tuple[Any, ...]]] = field(default_factory=dict)
    history: dict[str, list[Bar]] = field(default_factory=dict)
    day_traces: dict[str, DayTrace] = field(default_factory=dict)
    # The engine's day-move trackers by symbol (the engine's own dict, filled as symbols
    # appear), read after each tick; None until attached or when day moves are off.
    _day_moves: dict[str, DayMoves] | None = field(default=None, init=False, repr=False)
    # The engine's armed price levels (`--levels`), None until attached or without them.
    _levels: LevelBook | None = field(default=None, init=False, repr=False)

    def attach(self, engine: Engine) -> None:
        """Have the engine's pair and listing trackers record every evaluation, and give
        `day_move` the engine's day-move trackers to read."""
        for pair in engine.pairs:
            pair.trace = self.traces.setdefault(("index_divergence", pair.name), [])
        for listing in engine.listings:
            listing.trace = self.traces.setdefault(("ah_premium", listing.name), [])
        if engine.day_config is not None:
            self._day_moves = engine.day_moves
        self._levels = engine.levels

    def levels_of(self, symbol: str) -> list[ArmedLevel]:
        """The price levels armed on `symbol`, by price."""
        if self._levels is None:
            return []
        return sorted(
            (lv for lv in self._levels.levels() if lv.symbol == symbol),
            key=lambda lv: (lv.price, lv.level_id),
        )

    def day_move(self, symbol: str, ts_us: int, price: float) -> None:
        """Record an accepted tick's day-move state, read from the tracker after it ran.

        The detector keeps no history, so this is the only way to draw what each tick
        was judged against; it reads public attributes only, and runs only with --plot.
        """
        if self._day_moves is None:
            return
        moves = self._day_moves.get(symbol)
        if moves is None or moves.prev_close is None or moves.day is None:
            return  # no previous close: nothing was evaluated
        if moves.clock.day(ts_us) != moves.day:
            return  # a late tick of an earlier date: it changes nothing and is not judged
        state = DayState(
            moves.day, moves.prev_close, moves.prev_day, moves.limit_band, moves.average_volume
        )
        trace = self.day_traces.get(symbol)
        if trace is None:
            trace = self.day_traces[symbol] = DayTrace()
        if not trace.states or trace.states[-1][1] != state:
            trace.states.append((len(trace.us), state))
        trace.us.append(ts_us)
        trace.price.append(price)
        trace.volume.append(moves.volume)

    def tick(self, symbol: str, ts_us: int, price: float) -> None:
        series = self.ticks.get(symbol)
        if series is None:
            series = self.ticks[symbol] = ([], [])
        series[0].append(ts_us)
        series[1].append(price)

    def signal(self, signal: AnySignal) -> None:
        self.signals.setdefault((signal.kind, signal.subject), []).append(signal)

    def add_history(self, symbol: str, bars: Iterable[Bar]) -> None:
        self.history.setdefault(symbol, []).extend(bars)

    def zone(self, symbol: str) -> tzinfo:
        return self.rules.exchange_zones().zone_for(symbol)


def choose(data: ChartData, wanted: Sequence[str] | None, limit: int = DEFAULT_LIMIT) -> list[Key]:
    """The subjects to chart, among those that fired.

    By default every divergence pair and A/H listing that fired (few, and each one
    configured by hand), then the symbols' charts taken round by round, one of each kind
    per round in the order limit_hit, price_move, volume_spike, record_high, until
    `limit` charts in all. Within a kind the biggest come first: limit_hit by the most
    seals, price_move by the largest level reached, volume_spike by the largest multiple,
    each then by the most signals; record_high by the most record highs. Rounds rather
    than one kind after another because on a real market day hundreds of symbols cross
    5% and dozens seal a limit: taken in turn, no kind can crowd the others out, and
    limit hits (rare, the most watched) still lead each round.

    `wanted` names subjects (symbols, globs such as `*.HK`, or pairs `A/B`) to chart
    instead, every kind of each, with no limit.
    """
    fired = [key for key, signals in data.signals.items() if signals]
    if wanted:
        return sorted(
            key for key in fired if any(symbol_matches(pattern, key[1]) for pattern in wanted)
        )
    pairs = sorted(key for key in fired if key[0] not in SYMBOL_KINDS)
    queues = [
        sorted((key for key in fired if key[0] == kind), key=lambda key: _rank(data, key))
        for kind in SYMBOL_KINDS
    ]
    symbols = [key for round_ in itertools.zip_longest(*queues) for key in round_ if key]
    return (pairs + symbols)[: max(limit, 0)]


def _rank(data: ChartData, key: Key) -> tuple[float, int, str]:
    """Sort key within one kind: the biggest event first, then the most signals."""
    signals = data.signals[key]
    size = 0.0
    for s in signals:
        if isinstance(s, LimitHit):
            size += s.phase == "sealed"
        elif isinstance(s, PriceMove):
            size = max(size, s.level_pct)
        elif isinstance(s, VolumeSpike):
            size = max(size, s.multiple)
    return -size, -len(signals), key[1]


def file_name(key: Key) -> str:
    kind, subject = key
    return f"{kind}-{re.sub(r'[^A-Za-z0-9._-]', '-', subject.replace('/', '-vs-'))}.png"
