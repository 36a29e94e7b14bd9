"""The history stage: daily bars merged into the per-symbol state (record highs and day
moves) and into the index pairs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.bar import Bar
from schemas.pair_feed import PairBar
from services.detection.rules import Rules
from services.detection.trackers import Trackers
from services.parsing.validation import describe
from services.processor.outputs import Outputs, Record
from services.processor.symbol_state import SymbolState


class HistoryStage:
    """Daily bars from the `history` topic into the per-symbol state (and index pairs).

    Shares the symbol table with `SymbolStage`: the app runs the two under one lock, so
    neither writes a state computed before the other's write. A bar changes state only
    once (a second bar for a date is a duplicate), so a replay after a crash is harmless.
    """

    def __init__(self, rules: Rules, source: str) -> None:
        self.rules = rules
        self.source = source
        self.trackers = Trackers(rules)
        self.pairs_of = {s: [r.name for r in rs] for s, rs in rules.pairs_of().items()}

    def forget(self) -> None:
        """Nothing cached: every batch reads the table."""

    def process(
        self, records: list[Record], load: Callable[[str], dict[str, Any] | None], now: float
    ) -> Outputs:
        out = Outputs()
        states: dict[str, SymbolState] = {}
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
            if out.rejected_key(rec, self.source, received, symbol, "bar"):
                continue
            state = states.get(symbol)
            if state is None:
                value = load(symbol)
                state = states[symbol] = (
                    SymbolState.before_ticks(
                        self.trackers.symbol(symbol),
                        None if self.trackers.day_moves is None else self.trackers.moves(symbol),
                    )
                    if value is None
                    else SymbolState.from_json(symbol, value, self.trackers)
                )
            day = bar.date.toordinal()
            outcome = state.tracker.add_bar(day, bar.high)
            out.bars[outcome] += 1
            if outcome in ("held", "applied"):
                if state.moves is not None:
                    state.moves.add_bar(day, bar.close, bar.volume)
                for pair in self.pairs_of.get(symbol, ()):
                    msg = PairBar(symbol=symbol, day=day, close=bar.close)
                    out.forwards.append((pair, msg.model_dump_json().encode()))
                    out.forward_origins.append(None)
        for symbol, state in states.items():
            # The tick position stays: it is what SymbolStage skips replayed ticks by.
            out.states[symbol] = state.to_json()
        return out
