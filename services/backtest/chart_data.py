"""What `marketsignal backtest --plot` charts, gathered during the run; and which subjects.

Kept apart from `charts.py` so the backtest imports no matplotlib (over a second of
start-up) unless charts are asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, tzinfo
from typing import Any

from schemas.signals import AnySignal
from services.detection.engine import Engine
from services.detection.rules import Rules
from services.subscriptions.matching import symbol_matches

DEFAULT_LIMIT = 12

# A daily history bar: exchange-local date, high, close.
Bar = tuple[date, float, float]
Key = tuple[str, str]  # (kind, subject)


@dataclass
class ChartData:
    """What the charts need, gathered while the backtest runs."""

    rules: Rules
    ticks: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    signals: dict[Key, list[AnySignal]] = field(default_factory=dict)
    # (kind, subject) -> the tracker's evaluation trace (see PairTracker / AhTracker)
    traces: dict[Key, list[tuple[Any, ...]]] = field(default_factory=dict)
    history: dict[str, list[Bar]] = field(default_factory=dict)

    def attach(self, engine: Engine) -> None:
        """Have the engine's pair and listing trackers record every evaluation."""
        for pair in engine.pairs:
            pair.trace = self.traces.setdefault(("index_divergence", pair.name), [])
        for listing in engine.listings:
            listing.trace = self.traces.setdefault(("ah_premium", listing.name), [])

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

    By default every divergence pair and A/H listing that fired, then the symbols with
    the most record highs, `limit` charts in all. `wanted` names subjects (symbols,
    globs such as `*.HK`, or pairs `A/B`) to chart instead, with no limit.
    """
    fired = [key for key, signals in data.signals.items() if signals]
    if wanted:
        return sorted(
            key for key in fired if any(symbol_matches(pattern, key[1]) for pattern in wanted)
        )
    pairs = sorted(key for key in fired if key[0] != "record_high")
    symbols = sorted(
        (key for key in fired if key[0] == "record_high"),
        key=lambda key: (-len(data.signals[key]), key[1]),
    )
    return (pairs + symbols)[: max(limit, 0)]


def file_name(key: Key) -> str:
    kind, subject = key
    return f"{kind}-{re.sub(r'[^A-Za-z0-9._-]', '-', subject.replace('/', '-vs-'))}.png"
