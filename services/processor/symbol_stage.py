"""The symbol stage: lateness, record highs, the day moves, subscribers' price levels,
and each index tick forwarded to its pairs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.pair_feed_codec import pair_tick
from schemas.tick import Tick
from schemas.tick_bundle import partition_of
from schemas.tick_codec import FastTicks
from services.detection.day_moves import DayMoves
from services.detection.price_level import LevelBook
from services.detection.price_level import signals as level_signals
from services.detection.record_high import Late, SymbolTracker
from services.detection.rules import Rules
from services.detection.timeline import to_us
from services.detection.trackers import Trackers
from services.parsing.validation import describe
from services.processor.outputs import Outputs, Record, feeds_of
from services.processor.symbol_state import SymbolState, last_price

# (index in the record, symbol, ts_us, price, volume, kind, the bundle element or None for
# a single tick)
ParsedTick = tuple[int, str, int, float, int, str, Any]
# A symbol's trackers: its record highs, and its day moves (None while they are off).
Trackers2 = tuple[SymbolTracker, DayMoves | None]


class SymbolStage:
    """Lateness, record highs, the day moves, price levels, and the fan-out of index ticks
    to their pairs.

    A record holds one tick or a bundle of them (`schemas.tick_bundle`); a tick's place
    is (offset, index in the record), which is what a state remembers and a replay
    skips by, so a bundle replayed after a crash half-way applies each tick once.

    Price levels: `levels` is the book of armed levels (the worker's `LevelFeed` fills
    it between batches). Each accepted tick is checked against its symbol's levels after
    its other signals, as the backtest's `Engine` does, from p = the symbol's previous
    accepted price, which the symbol's state keeps (`"last"`): a replay after a crash
    starts from the p its state was written with, so it fires what the first run fired.
    """

    def __init__(
        self,
        rules: Rules,
        source: str,
        partitions: int | None = None,
        levels: LevelBook | None = None,
    ) -> None:
        self.rules = rules
        self.levels = LevelBook() if levels is None else levels
        self.source = source
        # The source topic's partition count: a bundle's ticks must all hash to its
        # partition. None: not checked (a stage fed by hand, e.g. in tests).
        self.partitions = partitions
        self._partition_of: dict[str, int] = {}
        self.trackers = Trackers(rules)
        self._context = {"zones": self.trackers.zones}
        self.pairs_of = feeds_of(rules)
        self.day_moves = self.trackers.day_moves is not None
        # symbol -> (the table value last written, the trackers it describes): saves
        # rebuilding trackers from the table on every batch.
        self._cache: dict[str, tuple[dict[str, Any], Trackers2]] = {}
        self._fast = FastTicks()

    def _restored(self, symbol: str, value: dict[str, Any]) -> Trackers2:
        cached = self._cache.get(symbol)
        if cached is not None and cached[0] is value:
            return cached[1]
        state = SymbolState.from_json(symbol, value, self.trackers)
        return state.tracker, state.moves

    def _new(self, symbol: str) -> Trackers2:
        moves = self.trackers.moves(symbol) if self.day_moves else None
        return self.trackers.symbol(symbol), moves

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
            parsed = (tick.symbol, to_us(tick.ts), tick.price, tick.volume, tick.kind)
        symbol = parsed[0]
        if out.rejected_key(rec, self.source, now, symbol, "tick"):
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
                parsed = (tick.symbol, to_us(tick.ts), tick.price, tick.volume, tick.kind)
            ticks.append((index, *parsed, item))
        key, partition, check_home = rec.key, rec.partition, self.partitions is not None
        for index, symbol, _us, _price, _volume, _kind, _item in ticks:
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
        """The batch's outputs. A batch that raises half-way leaves no cached tracker
        behind: the ones it advanced describe ticks whose state was never written, and
        the batch's replay must start from the table's."""
        try:
            return self._process(records, load, now)
        except BaseException:
            self._cache.clear()
            raise

    def _process(
        self, records: list[Record], load: Callable[[str], dict[str, Any] | None], now: float
    ) -> Outputs:
        out = Outputs()
        trackers: dict[str, Trackers2] = {}
        positions: dict[str, tuple[int, int, int]] = {}
        # p per symbol of the batch: its last accepted price, from its state, then moved
        # by each accepted tick.
        lasts: dict[str, float | None] = {}
        book = self.levels
        # Without any armed level the per-tick cost is keeping p: two dict operations.
        crossed = book.crossed if len(book) else None
        received = datetime.fromtimestamp(now, UTC)  # stamped on dead letters
        without_previous_close = 0
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
            for index, symbol, us, price, volume, kind, item in ticks:
                both = trackers.get(symbol)
                if both is None:
                    value = load(symbol)
                    if value is None:
                        both = self._new(symbol)
                        lasts[symbol] = None
                    elif SymbolState.holds(value, partition, offset, index):
                        continue  # applied before a restart: its outputs were sent then
                    else:
                        both = self._restored(symbol, value)
                        lasts[symbol] = last_price(value)
                    trackers[symbol] = both
                elif positions[symbol] >= (partition, offset, index):
                    # Applied earlier in this batch: a record fetched again after a seek
                    # back can follow later ones in the same batch. A record high would
                    # not notice; a day's volume would count it twice. (A symbol's ticks
                    # all come from one partition: its position orders them.)
                    continue
                tracker, moves = both
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
                if moves is not None:
                    moved = moves.update(us, price, volume, kind)
                    if moved:
                        out.add_signals(moved, rec.ingested_ms)
                    if moves.prev_close is None:
                        without_previous_close += 1
                previous = lasts[symbol]
                lasts[symbol] = price
                if crossed is not None and previous is not None:
                    fired = crossed(symbol, previous, price)
                    if fired:
                        ts = tracker.clock.datetime(us)
                        out.add_signals(level_signals(fired, ts, previous, price), rec.ingested_ms)
                out.evaluated += 1
                pairs = self.pairs_of.get(symbol)
                if pairs:
                    payload = pair_tick(symbol, us, price, partition, offset, index)
                    for pair in pairs:
                        out.forwards.append((pair, payload))
                        out.forward_origins.append(rec.ingested_ms)
        if self.day_moves:
            out.day_move_ticks = out.evaluated
            out.without_previous_close = without_previous_close
        for symbol, (tracker, moves) in trackers.items():
            if symbol in positions:
                partition, offset, index = positions[symbol]
                written = SymbolState.encode(
                    partition, offset, index, tracker, moves, lasts[symbol]
                )
                out.states[symbol] = written
                self._cache[symbol] = (written, (tracker, moves))
        return out

    def forget(self) -> None:
        """Drop cached trackers (after a rebalance the table is the only truth)."""
        self._cache.clear()
