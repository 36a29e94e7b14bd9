"""A restore reads only the state versions it knows, and names the one it refuses.

Through the processor's stages, which restore every state they read from their tables:
the table value's own version (`SymbolState`, `PairState`) and the tracker's inside it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.tick import Tick
from services.detection.rules import AhRule, DivergenceRule, Rules
from services.detection.state import StateVersionError
from services.detection.trackers import Trackers
from services.processor.outputs import Record, ah_key
from services.processor.pair_stage import PairStage
from services.processor.pair_state import PairState
from services.processor.symbol_stage import SymbolStage
from services.processor.symbol_state import SymbolState
from tests.unit.stage_helpers import Tables, as_records, run_stages

T0 = datetime(2026, 2, 12, 2, 0, tzinfo=UTC)
SYMBOL, PAIR, LISTING = "000688.SH", "000688.SH/HSTECH.HK", ah_key("688981.SH/0981.HK")
# Where each kind of state lives: its table and the key the scenario gives it.
WHERE = {"symbols": ("symbols", SYMBOL), "pairs": ("pairs", PAIR), "listings": ("pairs", LISTING)}


def _rules() -> Rules:
    return Rules(
        divergence=(DivergenceRule(a="000688.SH", b="HSTECH.HK", threshold_pp=2.0),),
        ah=(AhRule(a="688981.SH", h="0981.HK", fx_rate=1.09),),
    )


def _tables() -> Tables:
    """The tables after one tick of each symbol, as the changelog gives them back."""
    ticks = [
        Tick(symbol=symbol, ts=T0 + timedelta(seconds=i), price=price)
        for i, (symbol, price) in enumerate(
            [("000688.SH", 10.0), ("HSTECH.HK", 20.0), ("688981.SH", 50.0), ("0981.HK", 40.0)]
        )
    ]
    tables = Tables()
    run_stages(as_records(ticks), tables, SymbolStage(_rules(), "ticks"), PairStage(_rules()))
    tables.symbols = json.loads(json.dumps(tables.symbols))
    tables.pairs = json.loads(json.dumps(tables.pairs))
    return tables


def _restart(tables: Tables) -> None:
    """A worker restarted on `tables` takes a tick of every symbol and pair it holds."""
    later = T0 + timedelta(minutes=1)
    ticks = [Tick(symbol=s, ts=later, price=99.0) for s in tables.symbols]
    records = [r._replace(offset=100 + r.offset) for r in as_records(ticks)]
    _, out = run_stages(records, tables, SymbolStage(_rules(), "ticks"), PairStage(_rules()))
    assert out.evaluated == len(ticks)


def test_current_states_restore() -> None:
    tables = _tables()
    assert {v["v"] for v in [*tables.symbols.values(), *tables.pairs.values()]} == {2}
    assert {v["tracker"]["v"] for v in tables.symbols.values()} == {2}
    trackers = Trackers(_rules())
    for symbol, value in tables.symbols.items():
        restored = SymbolState.from_json(symbol, value, trackers).to_json()
        assert json.loads(json.dumps(restored)) == value
    for key, tracker_of in (
        (PAIR, lambda s: trackers.pair(PAIR, s)),
        (LISTING, lambda s: trackers.listing(LISTING.removeprefix("ah:"), s)),
    ):
        restored = PairState.from_json(tables.pairs[key], tracker_of).to_json()
        assert json.loads(json.dumps(restored)) == tables.pairs[key]
    _restart(tables)


@pytest.mark.parametrize("where", ["symbols", "pairs", "listings"])
@pytest.mark.parametrize("version", [None, 0, 99, "2"])
def test_an_unknown_tracker_version_is_refused_by_name(where: str, version: Any) -> None:
    tables = _tables()
    table, key = WHERE[where]
    tracker = getattr(tables, table)[key]["tracker"]
    if version is None:
        del tracker["v"]
    else:
        tracker["v"] = version
    with pytest.raises(StateVersionError, match=rf"state version {version!r} is not one"):
        _restart(tables)


@pytest.mark.parametrize("where", ["symbols", "pairs", "listings"])
@pytest.mark.parametrize("version", [0, 3, 99, "2"])
def test_an_unknown_table_version_is_refused_by_name(where: str, version: Any) -> None:
    tables = _tables()
    table, key = WHERE[where]
    getattr(tables, table)[key]["v"] = version
    with pytest.raises(StateVersionError, match=rf"state version {version!r} is not one"):
        _restart(tables)


def test_a_version_1_record_high_state_is_still_read() -> None:
    tables = _tables()
    tracker = tables.symbols[SYMBOL]["tracker"]
    tracker["v"] = 1
    tracker["debounce"] = {w: m[0] if m else [] for w, m in tracker["debounce"].items()}
    _restart(tables)


def test_parts_a_newer_writer_added_are_ignored() -> None:
    """A rollback reads what newer code wrote, if only optional parts were added."""
    tables = _tables()
    for value in [*tables.symbols.values(), *tables.pairs.values()]:
        value["later"] = {"v": 1}
    _restart(tables)


def test_a_pair_state_without_version_may_hold_bare_offsets() -> None:
    """Pair states written before tick bundles: one offset per source partition."""
    tables = _tables()
    value = tables.pairs[PAIR]
    del value["v"]
    value["src"] = {part: offset for part, (offset, _index) in value["src"].items()}
    stage = PairStage(_rules())
    state = stage._state(PAIR, value)
    assert state.applied == {part: (offset, 0) for part, offset in value["src"].items()}
    replay = Record(PAIR.encode(), b'{"type": "heartbeat"}', 0, 7)
    assert stage.process([replay], tables.pairs.get, 0.0).dead == []
