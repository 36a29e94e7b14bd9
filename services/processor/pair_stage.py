"""The pair stage: index divergences per pair and A/H premiums per listing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from schemas.pair_feed import PAIR_FEED_TOPIC, Heartbeat, PairBar, PairFeedMessage, PairTick
from schemas.pair_feed_codec import HEARTBEAT, PairFeedTuple, check_pair_feed
from services.detection.ah_premium import AhTracker
from services.detection.divergence import PairTracker
from services.detection.rules import Rules
from services.detection.trackers import Trackers
from services.parsing.validation import describe
from services.processor.outputs import Outputs, Record, ah_key
from services.processor.pair_state import Applied, PairState, TrackerOf

_PAIR_FEED: TypeAdapter[PairTick | PairBar | Heartbeat] = TypeAdapter(PairFeedMessage)

_NOWHERE = (-1, -1)


class PairStage:
    """Index divergence per pair and A/H premium per listing, fed by the re-keyed topic."""

    def __init__(self, rules: Rules, source: str = PAIR_FEED_TOPIC) -> None:
        self.source = source
        trackers = Trackers(rules)
        self._tracker_of: dict[str, TrackerOf] = {}
        for rule in rules.divergence:
            self._tracker_of[rule.name] = partial(trackers.pair, rule.name)
        for listing in rules.ah:
            self._tracker_of[ah_key(listing.name)] = partial(trackers.listing, listing.name)
        self.rules = set(self._tracker_of)
        # key -> the symbols its records may carry (a record naming another is poison)
        self._legs: dict[str, tuple[str, ...]] = {r.name: (r.a, r.b) for r in rules.divergence}
        self._legs.update({ah_key(listing.name): tuple(listing.legs) for listing in rules.ah})
        # key -> (the table value last written, the tracker it describes): saves rebuilding
        # trackers from the table on every batch.
        self._cache: dict[str, tuple[dict[str, Any], PairTracker | AhTracker]] = {}
        self.unknown: int = 0

    def subjects(self) -> list[str]:
        """Every configured pair and listing, as keyed on the re-keyed topic."""
        return list(self._tracker_of)

    def _state(self, pair: str, value: dict[str, Any] | None) -> PairState:
        if value is None:
            return PairState({}, self._tracker_of[pair](None))
        cached = self._cache.get(pair)
        if cached is not None and cached[0] is value:
            return PairState(PairState.applied_of(value), cached[1])
        return PairState.from_json(value, self._tracker_of[pair])

    def process(
        self,
        records: list[Record],
        load: Callable[[str], dict[str, Any] | None],
        now: float,
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
        self,
        records: list[Record],
        load: Callable[[str], dict[str, Any] | None],
        now: float,
    ) -> Outputs:
        out = Outputs()
        states: dict[str, PairState] = {}
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
                legs = self._legs_of(rec)
                for index, item in enumerate(obj):
                    # The symbol stage's own ticks, read without the detour through
                    # `_message`; everything else takes it.
                    quick = check_pair_feed(item) if type(item) is dict else None
                    if type(quick) is tuple and (legs is None or quick[0] in legs):
                        messages.append(quick)
                        continue
                    one = self._message(rec, item, None)
                    if isinstance(one, Exception):
                        now_dt = now_dt or datetime.fromtimestamp(now, UTC)
                        self._reject(rec, one, out, now_dt, index, orjson.dumps(item))
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
            state = states.get(pair)
            if state is None:
                state = states[pair] = self._state(pair, load(pair))
            tracker: PairTracker | AhTracker = state.tracker
            src: Applied = state.applied
            for msg in messages:
                if type(msg) is tuple:
                    symbol, ts_us, price, src_partition, src_offset, src_index = msg
                    part = str(src_partition)
                    position = (src_offset, src_index)
                    if position <= src.get(part, _NOWHERE):
                        continue  # a re-sent tick from a symbol-stage replay
                    src[part] = position
                    out.evaluated += 1
                    released = tracker.update(symbol, ts_us, price, now)
                    if released:
                        out.add_signals(released, rec.ingested_ms)
                    changed.add(pair)
                    continue
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
        for pair in changed:
            state = states[pair]
            written = out.states[pair] = state.to_json()
            self._cache[pair] = (written, state.tracker)
        return out

    def _message(
        self, rec: Record, obj: Any, raw: bytes | None
    ) -> PairFeedTuple | str | PairBar | Exception:
        """One message of a record (or of its bundle, whose `raw` is None: its JSON is
        only written out for the model, on the rare message the fast read leaves to it),
        or why it is refused."""
        msg: PairFeedTuple | str | PairBar | None
        msg = check_pair_feed(obj) if type(obj) is dict else None  # the common shapes
        try:
            if msg is None:
                model = _PAIR_FEED.validate_json(orjson.dumps(obj) if raw is None else raw)
                if isinstance(model, Heartbeat):
                    msg = HEARTBEAT
                elif isinstance(model, PairBar):
                    msg = model
                else:
                    msg = model.as_tuple()
            symbol = msg.symbol if isinstance(msg, PairBar) else None
            if isinstance(msg, tuple):
                symbol = msg[0]
            legs = self._legs_of(rec)
            if symbol is not None and legs is not None and symbol not in legs:
                key = rec.key.decode(errors="replace") if rec.key is not None else ""
                raise ValueError(f"{symbol} is not in {key}")
        except (ValidationError, ValueError) as exc:
            return exc
        return msg

    def _legs_of(self, rec: Record) -> tuple[str, ...] | None:
        """The symbols a record keyed as `rec` is may carry; None: any (no key, or a key
        that names no configured pair, which the batch then counts as unknown)."""
        if rec.key is None:
            return None
        return self._legs.get(rec.key.decode(errors="replace"))

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
