"""Grouping ticks per target partition into bundles (`schemas.tick_bundle`), pure logic.

A bundle closes when it holds `max_ticks` ticks or `max_bytes` of JSON, or `window_s`
after its first tick: a replay at full speed sends full bundles, a live feed waits at
most the window. When the oldest open bundle's window ends, every open bundle goes with
it: they leave together, in one produce request, and arrive in one fetch, instead of one
request each at staggered times (measured at 5k ticks/s over 6 partitions: a quarter of
the ingestor's CPU), and no tick waits longer than the window. Ticks keep their order
within a partition, so a symbol's ticks (all on one partition) keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Bundle:
    partition: int
    first_at: float  # monotonic time its first tick was added
    first_ms: int  # wall-clock epoch ms of that moment: the bundle's ingest time
    symbols: list[str] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    size: int = 2  # the JSON array's bytes: brackets and commas included

    def value(self) -> bytes:
        """The record's value: the tick itself when alone, else a JSON array of them."""
        if len(self.values) == 1:
            return self.values[0]
        return b"[" + b",".join(self.values) + b"]"

    def key(self) -> bytes | None:
        """The symbol when every tick has the same one (as a single tick's key), else None."""
        first = self.symbols[0]
        if all(symbol == first for symbol in self.symbols):
            return first.encode()
        return None


class Bundler:
    def __init__(self, window_s: float, max_ticks: int, max_bytes: int) -> None:
        self.window_s = window_s
        self.max_ticks = max_ticks
        self.max_bytes = max_bytes
        self.open: dict[int, Bundle] = {}

    def add(
        self, partition: int, symbol: str, value: bytes, now: float, now_ms: int
    ) -> list[Bundle]:
        """Add a tick's JSON; returns the bundles this closes (full ones), oldest first."""
        closed: list[Bundle] = []
        bundle = self.open.get(partition)
        if bundle is not None and bundle.size + len(value) + 1 > self.max_bytes:
            closed.append(self.open.pop(partition))
            bundle = None
        if bundle is None:
            bundle = self.open[partition] = Bundle(partition, now, now_ms)
        bundle.symbols.append(symbol)
        bundle.values.append(value)
        bundle.size += len(value) + 1
        if len(bundle.values) >= self.max_ticks or bundle.size >= self.max_bytes:
            closed.append(self.open.pop(partition))
        return closed

    def append(self, partition: int, symbol: str, value: bytes) -> bool:
        """`add` for the common case, without its clock readings: a tick that joins its
        partition's open bundle and closes nothing. False (nothing done) otherwise: then
        `add` it."""
        bundle = self.open.get(partition)
        if bundle is None:
            return False
        size = bundle.size + len(value) + 1
        values = bundle.values
        if size >= self.max_bytes or len(values) + 1 >= self.max_ticks:
            return False
        bundle.symbols.append(symbol)
        values.append(value)
        bundle.size = size
        return True

    def due(self, now: float) -> list[Bundle]:
        """Once any open bundle's window has passed: close and return them all."""
        if any(now - b.first_at >= self.window_s for b in self.open.values()):
            return self.drain()
        return []

    def next_due(self) -> float | None:
        """When the oldest open bundle's window ends (monotonic), None if none is open."""
        if not self.open:
            return None
        return min(b.first_at for b in self.open.values()) + self.window_s

    def drain(self) -> list[Bundle]:
        closed, self.open = list(self.open.values()), {}
        return closed
