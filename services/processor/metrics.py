"""The processor's own metrics, per batch, in the registry the worker creates.

Served on `processor_metrics_port` (9102) by services.runtime.observability, together with
faust's sensor (`faust_*`, faust_compat/sensor.py) in the same registry. Everything here
is updated once per batch or computed when scraped, never per event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.dead_letter import DeadLetter
from schemas.signals import AnySignal, IndexDivergence, RecordHigh

STALENESS_METRIC = "marketsignal_feed_staleness_seconds"

# Detector time per tick, measured per batch (batch time / ticks in it): the stages run
# a few µs per tick on a warm cache and up to ms when state is rebuilt from the table.
DETECTOR_BUCKETS_S = (
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.0025,
    0.005,
    0.01,
)


class FeedStaleness(Collector):
    """Seconds since this worker last processed a tick of each watched symbol.

    Computed when scraped. A symbol never seen counts from the worker's start, so a feed
    that never arrives is stale too. Each worker sees only its partitions' symbols: the
    alert rule takes `min by (symbol)` over workers (the owner's figure is the smallest).
    """

    def __init__(self, symbols: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        started = clock()
        self._last = dict.fromkeys(symbols, started)
        self._lock = threading.Lock()

    def seen(self, symbols: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            for symbol in symbols:
                if symbol in self._last:
                    self._last[symbol] = now

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(STALENESS_METRIC, "", labels=["symbol"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            STALENESS_METRIC,
            "Seconds since the last tick of a watched symbol reached this worker",
            labels=["symbol"],
        )
        now = self.clock()
        with self._lock:
            for symbol, at in sorted(self._last.items()):
                family.add_metric([symbol], max(0.0, now - at))
        yield family


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry, watch: Sequence[str]) -> None:
        self.evaluated = Counter(
            "marketsignal_processor_ticks_evaluated",
            "Ticks evaluated by a detector, by stage (symbol: record highs, pair: divergences)",
            ["stage"],
            registry=registry,
        )
        self.signals = Counter(
            "marketsignal_processor_signals",
            "Signals emitted, by kind and window (empty for ah_premium)",
            ["kind", "window"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "marketsignal_processor_dead_letters",
            "Ticks the processor sent to ticks.dlq, by reason (late, malformed)",
            ["reason"],
            registry=registry,
        )
        self.day_move_ticks = Counter(
            "marketsignal_processor_day_move_ticks",
            "Ticks evaluated for the day moves, by whether the symbol had a previous close "
            "(missing: no price_move, limit_hit or volume_spike can be judged; load history)",
            ["previous_close"],
            registry=registry,
        )
        for stage in ("symbol", "pair"):
            self.evaluated.labels(stage)
        for reason in ("late", "malformed"):
            self.dead_letters.labels(reason)
        self.pair_buffer = Gauge(
            "marketsignal_processor_pair_buffer_depth",
            "Index ticks held in a pair's reorder buffer, waiting for the other index",
            ["pair"],
            registry=registry,
        )
        self.detector_seconds = Histogram(
            "marketsignal_processor_detector_seconds_per_tick",
            "Detector time per tick, averaged over each batch",
            ["stage"],
            buckets=DETECTOR_BUCKETS_S,
            registry=registry,
        )
        self.bars = Counter(
            "marketsignal_processor_history_bars",
            "Daily bars read from the history topic, by outcome (held until the symbol's "
            "first tick, applied, overlap: dated on or after it, duplicate)",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("held", "applied", "overlap", "duplicate"):
            self.bars.labels(outcome)
        self.staleness = FeedStaleness(watch)
        registry.register(self.staleness)
        self.levels_armed = Gauge(
            "marketsignal_processor_levels_armed",
            "Subscribers' price levels this worker holds armed (every worker holds all)",
            registry=registry,
        )

    def count_levels(self, armed: Callable[[], int]) -> None:
        """Read the armed levels' count when scraped (a length: safe from the HTTP thread)."""
        self.levels_armed.set_function(armed)

    def batch(
        self,
        stage: str,
        records: int,
        seconds: float,
        evaluated: int,
        signals: Sequence[AnySignal],
        dead: Sequence[DeadLetter],
    ) -> None:
        if records:
            self.detector_seconds.labels(stage).observe(seconds / records)
        if evaluated:
            self.evaluated.labels(stage).inc(evaluated)
        if signals:
            # Counted first, then one increment per kind and window: `labels` takes a
            # lock and a lookup, which per signal weighed on a batch of many firings.
            counts: dict[tuple[str, str], int] = {}
            for signal in signals:
                # Only record highs and divergences have a window: the others get an
                # empty label, as Prometheus reads an absent one.
                window = signal.window if isinstance(signal, RecordHigh | IndexDivergence) else ""
                key = (signal.kind, window)
                counts[key] = counts.get(key, 0) + 1
            for (kind, window), n in counts.items():
                self.signals.labels(kind, window).inc(n)
        for letter in dead:
            self.dead_letters.labels(letter.reason).inc()

    def day_moves(self, ticks: int, without_previous_close: int) -> None:
        if ticks:
            self.day_move_ticks.labels("known").inc(ticks - without_previous_close)
            self.day_move_ticks.labels("missing").inc(without_previous_close)

    def history(self, outcomes: Mapping[str, int], dead: Sequence[DeadLetter]) -> None:
        for outcome, n in outcomes.items():
            self.bars.labels(outcome).inc(n)
        for letter in dead:
            self.dead_letters.labels(letter.reason).inc()

    def buffers(self, pending: dict[str, int]) -> None:
        for pair, depth in pending.items():
            self.pair_buffer.labels(pair).set(depth)
