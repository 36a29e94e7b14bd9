"""The processor's two steps as plain Python: batches of Kafka records in, outputs out.

The Faust agents in `app.py` only move records between topics, tables and these stages,
so the whole at-least-once logic (skip what state already holds, re-send what a crash
may have lost) is testable without a broker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from schemas.bar import Bar
from schemas.dead_letter import DeadLetter, DeadLetterReason, quote_raw
from schemas.pair_feed import PAIR_FEED_TOPIC, Heartbeat, PairBar, PairFeedMessage, PairTick
from schemas.signals import AnySignal
from schemas.tick import Tick
from services.detection.ah_premium import AhTracker
from services.detection.divergence import PairTracker
from services.detection.engine import Clocks, new_ah_tracker, new_pair_tracker, record_high_config
from services.detection.record_high import Late, SymbolTracker
from services.detection.rules import Rules
from services.detection.timeline import to_us
from services.parsing.validation import describe
from services.processor.fast_json import HEARTBEAT, FastTicks, pair_tick, parse_pair_feed

_PAIR_FEED: TypeAdapter[PairTick | PairBar | Heartbeat] = TypeAdapter(PairFeedMessage)


class Record(NamedTuple):
    """What the stages need of a Kafka record."""

    key: bytes | None
    value: bytes
    partition: int
    offset: int
    # When the tick entered the pipeline (the ingestor's Kafka record timestamp, epoch ms),
    # carried to the alerter for the tick-to-alert latency; None when unknown.
    ingested_ms: int | None = None


@dataclass
class Outputs:
    signals: list[AnySignal] = field(default_factory=list)
    # ingested_ms of the tick behind each signal (parallel to `signals`)
    signal_origins: list[int | None] = field(default_factory=list)
    # (pair name, PairTick JSON) for the re-keyed topic
    forwards: list[tuple[str, bytes]] = field(default_factory=list)
    forward_origins: list[int | None] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    # key -> new state, to write only after the outputs above are acknowledged
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluated: int = 0
    # history: what became of each bar (held, applied, overlap, duplicate)
    bars: Counter[str] = field(default_factory=Counter)

    def add_signals(self, signals: Sequence[AnySignal], origin_ms: int | None) -> None:
        self.signals.extend(signals)
        self.signal_origins.extend([origin_ms] * len(signals))

    def reject(
        self,
        rec: Record,
        topic: str,
        now: datetime,
        *,
        reason: DeadLetterReason,
        field: str | None,
        detail: str,
        symbol: str | None = None,
    ) -> None:
        """Dead-letter `rec`, quoting it and naming where it was read (`topic[p]@offset`)."""
        self.dead.append(
            DeadLetter(
                reason=reason,
                field=field,
                detail=detail,
                raw=_text(rec.value),
                source=f"{topic}[{rec.partition}]@{rec.offset}",
                symbol=symbol,
                received_at=now,
            )
        )


# An A/H listing's key on the re-keyed topic and in the pair table: a divergence pair
# and a listing may name the same two symbols, and their states must not meet.
AH_KEY_PREFIX = "ah:"


def ah_key(listing: str) -> str:
    return AH_KEY_PREFIX + listing


def feeds_of(rules: Rules) -> dict[str, list[str]]:
    """Symbol -> the keys (divergence pairs, A/H listings) its accepted ticks are sent to."""
    out = {s: [r.name for r in rs] for s, rs in rules.pairs_of().items()}
    for symbol, listings in rules.listings_of().items():
        out.setdefault(symbol, []).extend(ah_key(r.name) for r in listings)
    return out


def _text(value: bytes) -> str:
    return quote_raw(value)


class SymbolStage:
    """Lateness, record highs, and the fan-out of index ticks to their pairs."""

    def __init__(self, rules: Rules, source: str) -> None:
        self.rules = rules
        self.source = source
        self.zones = rules.exchange_zones()
        self.clocks = Clocks(self.zones)
        self.config = record_high_config(rules)
        self._context = {"zones": self.zones}
        self.pairs_of = feeds_of(rules)
        # symbol -> (the state dict last written, the tracker it describes): saves
        # rebuilding trackers from the table on every batch.
        self._cache: dict[str, tuple[dict[str, Any], SymbolTracker]] = {}
        self._fast = FastTicks()

    def _tracker(self, symbol: str, state: dict[str, Any] | None) -> SymbolTracker:
        cached = self._cache.get(symbol)
        if state is not None and cached is not None and cached[0] is state:
            return cached[1]
        clock = self.clocks.for_symbol(symbol)
        if state is None:
            return SymbolTracker(symbol, self.config, clock)
        return SymbolTracker.from_state(symbol, self.config, clock, state["tracker"])

    def process(
        self, records: list[Record], load: Callable[[str], dict[str, Any] | None]
    ) -> Outputs:
        out = Outputs()
        trackers: dict[str, SymbolTracker] = {}
        positions: dict[str, tuple[int, int]] = {}
        now = datetime.now(UTC)
        fast = self._fast.parse
        for rec in records:
            parsed = fast(rec.value)
            if parsed is None:
                # Anything unusual: the model decides, and names the field if it is bad.
                try:
                    tick = Tick.model_validate_json(rec.value, context=self._context)
                except ValidationError as exc:
                    bad = describe(exc)
                    out.reject(
                        rec,
                        self.source,
                        now,
                        reason="malformed",
                        field=bad.field,
                        detail=bad.detail,
                    )
                    continue
                symbol, us, price = tick.symbol, to_us(tick.ts), tick.price
            else:
                symbol, us, price = parsed
            if rec.key is not None and rec.key != symbol.encode():
                # State is partitioned by symbol: a tick keyed otherwise would be judged
                # against the wrong partition's state.
                out.reject(
                    rec,
                    self.source,
                    now,
                    reason="malformed",
                    field="key",
                    detail=f"record key {rec.key!r} is not the tick's symbol",
                    symbol=symbol,
                )
                continue
            tracker = trackers.get(symbol)
            if tracker is None:
                state = load(symbol)
                if state is not None and state["p"] == rec.partition and rec.offset <= state["o"]:
                    continue  # applied before a restart: its outputs were sent then
                tracker = self._tracker(symbol, state)
                trackers[symbol] = tracker
            result = tracker.update(us, price)
            positions[symbol] = (rec.partition, rec.offset)
            if result is not None:
                if type(result) is Late:
                    out.reject(
                        rec,
                        self.source,
                        now,
                        reason="late",
                        field="ts",
                        detail=result.detail(self.rules.ticks.allowed_lateness_s),
                        symbol=symbol,
                    )
                    continue
                out.add_signals([result], rec.ingested_ms)  # type: ignore[list-item]
            out.evaluated += 1
            pairs = self.pairs_of.get(symbol)
            if pairs:
                payload = pair_tick(symbol, us, price, rec.partition, rec.offset)
                for pair in pairs:
                    out.forwards.append((pair, payload))
                    out.forward_origins.append(rec.ingested_ms)
        for symbol, tracker in trackers.items():
            if symbol in positions:
                p, o = positions[symbol]
                state = {"p": p, "o": o, "tracker": tracker.to_state()}
                out.states[symbol] = state
                self._cache[symbol] = (state, tracker)
        return out

    def forget(self) -> None:
        """Drop cached trackers (after a rebalance the table is the only truth)."""
        self._cache.clear()


class HistoryStage:
    """Daily bars from the `history` topic into the per-symbol state (and index pairs).

    Shares the symbol table with `SymbolStage`: the app runs the two under one lock, so
    neither writes a state computed before the other's write. A bar changes state only
    once (a second bar for a date is a duplicate), so a replay after a crash is harmless.
    """

    def __init__(self, rules: Rules, source: str) -> None:
        self.rules = rules
        self.source = source
        self.clocks = Clocks(rules.exchange_zones())
        self.config = record_high_config(rules)
        self.pairs_of = {s: [r.name for r in rs] for s, rs in rules.pairs_of().items()}

    def process(
        self, records: list[Record], load: Callable[[str], dict[str, Any] | None]
    ) -> Outputs:
        out = Outputs()
        trackers: dict[str, tuple[dict[str, Any] | None, SymbolTracker]] = {}
        now = datetime.now(UTC)
        for rec in records:
            try:
                bar = Bar.model_validate_json(rec.value)
            except ValidationError as exc:
                bad = describe(exc)
                out.reject(
                    rec,
                    self.source,
                    now,
                    reason="malformed",
                    field=bad.field,
                    detail=f"not a daily bar: {bad.detail}",
                )
                continue
            symbol = bar.symbol
            if rec.key is not None and rec.key != symbol.encode():
                out.reject(
                    rec,
                    self.source,
                    now,
                    reason="malformed",
                    field="key",
                    detail=f"record key {rec.key!r} is not the bar's symbol",
                    symbol=symbol,
                )
                continue
            entry = trackers.get(symbol)
            if entry is None:
                state = load(symbol)
                clock = self.clocks.for_symbol(symbol)
                tracker = (
                    SymbolTracker(symbol, self.config, clock)
                    if state is None
                    else SymbolTracker.from_state(symbol, self.config, clock, state["tracker"])
                )
                entry = trackers[symbol] = (state, tracker)
            day = bar.date.toordinal()
            outcome = entry[1].add_bar(day, bar.high)
            out.bars[outcome] += 1
            if outcome in ("held", "applied"):
                for pair in self.pairs_of.get(symbol, ()):
                    msg = PairBar(symbol=symbol, day=day, close=bar.close)
                    out.forwards.append((pair, msg.model_dump_json().encode()))
                    out.forward_origins.append(None)
        for symbol, (state, tracker) in trackers.items():
            # The tick position stays: it is what SymbolStage skips replayed ticks by.
            p, o = (state["p"], state["o"]) if state is not None else (-1, -1)
            out.states[symbol] = {"p": p, "o": o, "tracker": tracker.to_state()}
        return out


class PairStage:
    """Index divergence per pair and A/H premium per listing, fed by the re-keyed topic."""

    def __init__(self, rules: Rules, source: str = PAIR_FEED_TOPIC) -> None:
        self.source = source
        clocks = Clocks(rules.exchange_zones())
        self._new: dict[str, Callable[[], PairTracker | AhTracker]] = {}
        for rule in rules.divergence:
            self._new[rule.name] = partial(new_pair_tracker, rules, rule, clocks)
        for listing in rules.ah:
            self._new[ah_key(listing.name)] = partial(new_ah_tracker, listing, clocks)
        self.rules = set(self._new)
        # key -> the symbols its records may carry (a record naming another is poison)
        self._legs: dict[str, tuple[str, ...]] = {r.name: (r.a, r.b) for r in rules.divergence}
        self._legs.update({ah_key(listing.name): tuple(listing.legs) for listing in rules.ah})
        self._cache: dict[str, tuple[dict[str, Any], PairTracker | AhTracker]] = {}
        self.unknown: int = 0

    def subjects(self) -> list[str]:
        """Every configured pair and listing, as keyed on the re-keyed topic."""
        return list(self._new)

    def _tracker(self, pair: str, state: dict[str, Any] | None) -> PairTracker | AhTracker:
        cached = self._cache.get(pair)
        if state is not None and cached is not None and cached[0] is state:
            return cached[1]
        fresh = self._new[pair]()
        if state is None:
            return fresh
        if isinstance(fresh, AhTracker):
            return AhTracker.from_state(fresh.rule, fresh.clocks, state["tracker"])
        return PairTracker.from_state(fresh.rule, fresh.clocks, fresh.lateness_us, state["tracker"])

    def process(
        self,
        records: list[Record],
        load: Callable[[str], dict[str, Any] | None],
        now: float,
    ) -> Outputs:
        out = Outputs()
        trackers: dict[str, PairTracker | AhTracker] = {}
        applied: dict[str, dict[str, int]] = {}
        changed: set[str] = set()
        now_dt: datetime | None = None
        for rec in records:
            msg: tuple[str, int, float, int, int] | str | PairBar | None
            msg = parse_pair_feed(rec.value)  # the common shapes, without the model
            try:
                if msg is None:
                    model = _PAIR_FEED.validate_json(rec.value)
                    if isinstance(model, Heartbeat):
                        msg = HEARTBEAT
                    elif isinstance(model, PairBar):
                        msg = model
                    else:
                        msg = (
                            model.symbol,
                            model.ts_us,
                            model.price,
                            model.src_partition,
                            model.src_offset,
                        )
                symbol = msg.symbol if isinstance(msg, PairBar) else None
                if isinstance(msg, tuple):
                    symbol = msg[0]
                if symbol is not None and rec.key is not None:
                    key = rec.key.decode(errors="replace")
                    legs = self._legs.get(key)
                    if legs is not None and symbol not in legs:
                        raise ValueError(f"{symbol} is not in {key}")
            except (ValidationError, ValueError) as exc:
                # Written by some other client: dead-lettered with the reason, never fatal.
                now_dt = now_dt or datetime.now(UTC)
                bad = describe(exc) if isinstance(exc, ValidationError) else None
                out.reject(
                    rec,
                    self.source,
                    now_dt,
                    reason="malformed",
                    field=bad.field if bad else "symbol",
                    detail=bad.detail if bad else str(exc),
                )
                continue
            pair = rec.key.decode(errors="replace") if rec.key is not None else ""
            if pair not in self.rules:
                self.unknown += 1  # a pair no longer configured: its records are moot
                continue
            tracker = trackers.get(pair)
            if tracker is None:
                state = load(pair)
                tracker = self._tracker(pair, state)
                trackers[pair] = tracker
                applied[pair] = dict(state["src"]) if state is not None else {}
            if msg is HEARTBEAT:
                if tracker.pending:
                    # Released by the reorder timer: no single tick is behind them.
                    out.add_signals(tracker.expire(now), None)
                    changed.add(pair)
                continue
            if isinstance(msg, PairBar):
                # Idempotent (a date's first bar stays), so a replay needs no offset check.
                if isinstance(tracker, PairTracker):  # a listing has no bases: no bars
                    tracker.add_bar(msg.symbol, msg.day, msg.close)
                    changed.add(pair)
                continue
            assert type(msg) is tuple
            symbol, ts_us, price, src_partition, src_offset = msg
            src = applied[pair]
            part = str(src_partition)
            if src_offset <= src.get(part, -1):
                continue  # a re-sent record from a symbol-stage replay
            src[part] = src_offset
            out.evaluated += 1
            out.add_signals(tracker.update(symbol, ts_us, price, now), rec.ingested_ms)
            changed.add(pair)
        for pair in changed:
            state = {"src": applied[pair], "tracker": trackers[pair].to_state()}
            out.states[pair] = state
            self._cache[pair] = (state, trackers[pair])
        return out

    def pending(self) -> dict[str, int]:
        return {pair: tracker.pending for pair, (_, tracker) in self._cache.items()}

    def forget(self) -> None:
        self._cache.clear()
