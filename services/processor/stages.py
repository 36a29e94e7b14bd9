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

import orjson
from pydantic import TypeAdapter, ValidationError

from schemas.bar import Bar
from schemas.dead_letter import DeadLetter, DeadLetterReason, quote_raw
from schemas.pair_feed import PAIR_FEED_TOPIC, Heartbeat, PairBar, PairFeedMessage, PairTick
from schemas.signals import AnySignal
from schemas.tick import Tick
from schemas.tick_bundle import partition_of
from services.detection.ah_premium import AhTracker
from services.detection.divergence import PairTracker
from services.detection.engine import Clocks, new_ah_tracker, new_pair_tracker, record_high_config
from services.detection.record_high import Late, SymbolTracker
from services.detection.rules import Rules
from services.detection.timeline import to_us
from services.parsing.validation import describe
from services.processor.fast_json import (
    HEARTBEAT,
    FastTicks,
    PairFeedTuple,
    check_pair_feed,
    pair_tick,
)

# Forwarded ticks per record on the re-keyed topic (about 130 bytes each).
PAIR_BUNDLE_MAX = 1000

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
    # ticks read from well-formed records (a bundle counts each of its ticks)
    ticks: int = 0
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
        index: int | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Dead-letter `rec`, quoting it and naming where it was read (`topic[p]@offset`).

        One tick of a bundle: `index` is its place in the bundle (the source reads
        `topic[p]@offset#index`) and `raw` its own JSON, quoted instead of the record.
        """
        where = f"{topic}[{rec.partition}]@{rec.offset}"
        self.dead.append(
            DeadLetter(
                reason=reason,
                field=field,
                detail=detail,
                raw=_text(rec.value if raw is None else raw),
                source=where if index is None else f"{where}#{index}",
                symbol=symbol,
                received_at=now,
            )
        )

    def pair_records(self, max_ticks: int = PAIR_BUNDLE_MAX) -> list[tuple[str, bytes, int | None]]:
        """The forwards as records for the re-keyed topic: (pair, value, origin ms).

        A pair's forwards of one batch go in one record, a JSON array, in order (up to
        `max_ticks` each); a lone forward stays a plain message. The origin is the
        earliest of the ticks', so a latency read from it includes the wait.
        """
        grouped: dict[str, tuple[list[bytes], list[int | None]]] = {}
        for (pair, payload), origin in zip(self.forwards, self.forward_origins, strict=True):
            entry = grouped.get(pair)
            if entry is None:
                entry = grouped[pair] = ([], [])
            entry[0].append(payload)
            entry[1].append(origin)
        out: list[tuple[str, bytes, int | None]] = []
        for pair, (payloads, origins) in grouped.items():
            for start in range(0, len(payloads), max_ticks):
                chunk = payloads[start : start + max_ticks]
                known = [o for o in origins[start : start + max_ticks] if o is not None]
                value = chunk[0] if len(chunk) == 1 else b"[" + b",".join(chunk) + b"]"
                out.append((pair, value, min(known) if known else None))
        return out


# (index in the record, symbol, ts_us, price, the bundle element or None for a single tick)
ParsedTick = tuple[int, str, int, float, Any]


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
    """Lateness, record highs, and the fan-out of index ticks to their pairs.

    A record holds one tick or a bundle of them (`schemas.tick_bundle`); a tick's place
    is (offset, index in the record), which is what a state remembers and a replay
    skips by, so a bundle replayed after a crash half-way applies each tick once.
    """

    def __init__(self, rules: Rules, source: str, partitions: int | None = None) -> None:
        self.rules = rules
        self.source = source
        # The source topic's partition count: a bundle's ticks must all hash to its
        # partition. None: not checked (a stage fed by hand, e.g. in tests).
        self.partitions = partitions
        self._partition_of: dict[str, int] = {}
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

    def _single(self, rec: Record, obj: Any, out: Outputs, now: datetime) -> ParsedTick | None:
        parsed = self._fast.check(obj) if type(obj) is dict else None
        if parsed is None:
            # Anything unusual: the model decides, and names the field if it is bad.
            try:
                tick = Tick.model_validate_json(rec.value, context=self._context)
            except ValidationError as exc:
                bad = describe(exc)
                out.reject(
                    rec, self.source, now, reason="malformed", field=bad.field, detail=bad.detail
                )
                return None
            parsed = (tick.symbol, to_us(tick.ts), tick.price)
        symbol = parsed[0]
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
            return None
        return (0, *parsed, None)

    def _home(self, symbol: str) -> int:
        home = self._partition_of.get(symbol)
        if home is None:
            assert self.partitions is not None
            home = self._partition_of[symbol] = partition_of(symbol, self.partitions)
        return home

    def _bundle(
        self, rec: Record, items: list[Any], out: Outputs, now: datetime
    ) -> list[ParsedTick]:
        """The ticks of a bundle; a bad one is dead-lettered alone, a bad bundle whole."""
        if not items:
            out.reject(
                rec, self.source, now, reason="malformed", field=None, detail="an empty bundle"
            )
            return []
        ticks: list[ParsedTick] = []
        bad_ones = Outputs()
        check = self._fast.check
        for index, item in enumerate(items):
            parsed = check(item) if type(item) is dict else None
            if parsed is None:
                raw = orjson.dumps(item)
                try:
                    tick = Tick.model_validate_json(raw, context=self._context)
                except ValidationError as exc:
                    bad = describe(exc)
                    bad_ones.reject(
                        rec,
                        self.source,
                        now,
                        reason="malformed",
                        field=bad.field,
                        detail=f"tick {index} of a bundle: {bad.detail}",
                        index=index,
                        raw=raw,
                    )
                    continue
                parsed = (tick.symbol, to_us(tick.ts), tick.price)
            ticks.append((index, *parsed, item))
        key, partition, check_home = rec.key, rec.partition, self.partitions is not None
        for index, symbol, _us, _price, _item in ticks:
            if key is not None and key != symbol.encode():
                detail = f"record key {key!r} is not the symbol of tick {index} ({symbol})"
            elif check_home and self._home(symbol) != partition:
                detail = (
                    f"tick {index} ({symbol}) belongs to partition {self._home(symbol)}, "
                    f"not {partition}: every tick of a bundle must hash to its partition"
                )
            else:
                continue
            # Its ticks would be judged against another partition's state: none is used.
            out.reject(rec, self.source, now, reason="malformed", field="symbol", detail=detail)
            return []
        out.dead.extend(bad_ones.dead)
        return ticks

    def process(
        self, records: list[Record], load: Callable[[str], dict[str, Any] | None], now: float
    ) -> Outputs:
        out = Outputs()
        trackers: dict[str, SymbolTracker] = {}
        positions: dict[str, tuple[int, int, int]] = {}
        received = datetime.fromtimestamp(now, UTC)  # stamped on dead letters
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        ticks: Sequence[ParsedTick]
        for rec in records:
            try:
                obj = loads(rec.value)
            except decode_error:
                obj = None
            if type(obj) is list:
                ticks = self._bundle(rec, obj, out, received)
            else:
                one = self._single(rec, obj, out, received)
                if one is None:
                    continue
                ticks = (one,)
            out.ticks += len(ticks)
            partition, offset = rec.partition, rec.offset
            for index, symbol, us, price, item in ticks:
                tracker = trackers.get(symbol)
                if tracker is None:
                    state = load(symbol)
                    if (
                        state is not None
                        and state["p"] == partition
                        and (offset, index) <= (state["o"], state.get("i", 0))
                    ):
                        continue  # applied before a restart: its outputs were sent then
                    tracker = self._tracker(symbol, state)
                    trackers[symbol] = tracker
                result = tracker.update(us, price)
                positions[symbol] = (partition, offset, index)
                if result is not None:
                    if type(result) is Late:
                        out.reject(
                            rec,
                            self.source,
                            received,
                            reason="late",
                            field="ts",
                            detail=result.detail(self.rules.ticks.allowed_lateness_s),
                            symbol=symbol,
                            index=None if item is None else index,
                            raw=None if item is None else orjson.dumps(item),
                        )
                        continue
                    out.add_signals([result], rec.ingested_ms)  # type: ignore[list-item]
                out.evaluated += 1
                pairs = self.pairs_of.get(symbol)
                if pairs:
                    payload = pair_tick(symbol, us, price, partition, offset, index)
                    for pair in pairs:
                        out.forwards.append((pair, payload))
                        out.forward_origins.append(rec.ingested_ms)
        for symbol, tracker in trackers.items():
            if symbol in positions:
                p, o, i = positions[symbol]
                state = {"p": p, "o": o, "i": i, "tracker": tracker.to_state()}
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

    def forget(self) -> None:
        """Nothing cached: every batch reads the table."""

    def process(
        self, records: list[Record], load: Callable[[str], dict[str, Any] | None], now: float
    ) -> Outputs:
        out = Outputs()
        trackers: dict[str, tuple[dict[str, Any] | None, SymbolTracker]] = {}
        received = datetime.fromtimestamp(now, UTC)  # stamped on dead letters
        for rec in records:
            try:
                bar = Bar.model_validate_json(rec.value)
            except ValidationError as exc:
                bad = describe(exc)
                out.reject(
                    rec,
                    self.source,
                    received,
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
                    received,
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
            p, o, i = (
                (state["p"], state["o"], state.get("i", 0)) if state is not None else (-1, -1, 0)
            )
            out.states[symbol] = {"p": p, "o": o, "i": i, "tracker": tracker.to_state()}
        return out


_NOWHERE = (-1, -1)


def _positions(src: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """A pair state's source positions: [offset, index] per partition (an offset alone in
    states written before bundles)."""
    return {
        part: (pos, 0) if isinstance(pos, int) else (int(pos[0]), int(pos[1]))
        for part, pos in src.items()
    }


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
        applied: dict[str, dict[str, tuple[int, int]]] = {}
        changed: set[str] = set()
        now_dt: datetime | None = None
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        for rec in records:
            try:
                obj = loads(rec.value)
            except decode_error:
                obj = None
            messages: list[PairFeedTuple | str | PairBar]
            if type(obj) is list:
                if not obj:
                    now_dt = now_dt or datetime.fromtimestamp(now, UTC)
                    out.reject(
                        rec,
                        self.source,
                        now_dt,
                        reason="malformed",
                        field=None,
                        detail="an empty bundle",
                    )
                    continue
                messages = []
                for index, item in enumerate(obj):
                    raw = orjson.dumps(item)
                    one = self._message(rec, item, raw)
                    if isinstance(one, Exception):
                        now_dt = now_dt or datetime.fromtimestamp(now, UTC)
                        self._reject(rec, one, out, now_dt, index, raw)
                    else:
                        messages.append(one)
            else:
                one = self._message(rec, obj, rec.value)
                if isinstance(one, Exception):
                    now_dt = now_dt or datetime.fromtimestamp(now, UTC)
                    self._reject(rec, one, out, now_dt, None, None)
                    continue
                messages = [one]
            pair = rec.key.decode(errors="replace") if rec.key is not None else ""
            if pair not in self.rules:
                self.unknown += len(messages)  # a pair no longer configured: moot
                continue
            tracker = trackers.get(pair)
            if tracker is None:
                state = load(pair)
                tracker = self._tracker(pair, state)
                trackers[pair] = tracker
                applied[pair] = _positions(state["src"]) if state is not None else {}
            src = applied[pair]
            for msg in messages:
                if msg is HEARTBEAT:
                    if tracker.pending:
                        # Released by the reorder timer: no single tick is behind them.
                        out.add_signals(tracker.expire(now), None)
                        changed.add(pair)
                    continue
                if isinstance(msg, PairBar):
                    # Idempotent (a date's first bar stays): a replay needs no offset check.
                    if isinstance(tracker, PairTracker):  # a listing has no bases: no bars
                        tracker.add_bar(msg.symbol, msg.day, msg.close)
                        changed.add(pair)
                    continue
                assert type(msg) is tuple
                symbol, ts_us, price, src_partition, src_offset, src_index = msg
                part = str(src_partition)
                position = (src_offset, src_index)
                if position <= src.get(part, _NOWHERE):
                    continue  # a re-sent tick from a symbol-stage replay
                src[part] = position
                out.evaluated += 1
                out.add_signals(tracker.update(symbol, ts_us, price, now), rec.ingested_ms)
                changed.add(pair)
        for pair in changed:
            saved = {part: [o, i] for part, (o, i) in applied[pair].items()}
            state = {"src": saved, "tracker": trackers[pair].to_state()}
            out.states[pair] = state
            self._cache[pair] = (state, trackers[pair])
        return out

    def _message(
        self, rec: Record, obj: Any, raw: bytes
    ) -> PairFeedTuple | str | PairBar | Exception:
        """One message of a record (or of its bundle), or why it is refused."""
        msg: PairFeedTuple | str | PairBar | None
        msg = check_pair_feed(obj) if type(obj) is dict else None  # the common shapes
        try:
            if msg is None:
                model = _PAIR_FEED.validate_json(raw)
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
                        model.src_index,
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
            return exc
        return msg

    def _reject(
        self,
        rec: Record,
        exc: Exception,
        out: Outputs,
        now: datetime,
        index: int | None,
        raw: bytes | None,
    ) -> None:
        # Written by some other client: dead-lettered with the reason, never fatal.
        bad = describe(exc) if isinstance(exc, ValidationError) else None
        out.reject(
            rec,
            self.source,
            now,
            reason="malformed",
            field=bad.field if bad else "symbol",
            detail=bad.detail if bad else str(exc),
            index=index,
            raw=raw,
        )

    def pending(self) -> dict[str, int]:
        return {pair: tracker.pending for pair, (_, tracker) in self._cache.items()}

    def forget(self) -> None:
        self._cache.clear()
