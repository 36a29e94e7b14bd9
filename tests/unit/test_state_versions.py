"""A restore reads only the state versions it knows, and names the one it refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.rules import AhRule, DivergenceRule, Rules
from services.detection.state import StateVersionError

T0 = datetime(2026, 2, 12, 2, 0, tzinfo=UTC)


def _engine_state() -> dict[str, Any]:
    engine = Engine(_rules())
    for i, (symbol, price) in enumerate(
        [("000688.SH", 10.0), ("HSTECH.HK", 20.0), ("688981.SH", 50.0), ("0981.HK", 40.0)]
    ):
        engine.process(Tick(symbol=symbol, ts=T0 + timedelta(seconds=i), price=price))
    state: dict[str, Any] = json.loads(json.dumps(engine.to_state()))
    return state


def _rules() -> Rules:
    return Rules(
        divergence=(DivergenceRule(a="000688.SH", b="HSTECH.HK", threshold_pp=2.0),),
        ah=(AhRule(a="688981.SH", h="0981.HK", fx_rate=1.09),),
    )


def test_current_states_restore() -> None:
    state = _engine_state()
    assert {s["v"] for s in state["symbols"].values()} == {2}
    restored = Engine.from_state(_rules(), state)
    assert json.loads(json.dumps(restored.to_state())) == state


@pytest.mark.parametrize("where", ["symbols", "pairs", "listings"])
@pytest.mark.parametrize("version", [None, 0, 99, "2"])
def test_an_unknown_version_is_refused_by_name(where: str, version: Any) -> None:
    state = _engine_state()
    assert state[where], f"the scenario has {where} state"
    one = next(iter(state[where].values()))
    if version is None:
        del one["v"]
    else:
        one["v"] = version
    with pytest.raises(StateVersionError, match=rf"state version {version!r} is not one"):
        Engine.from_state(_rules(), state)


def test_a_version_1_record_high_state_is_still_read() -> None:
    state = _engine_state()
    symbol = next(iter(state["symbols"].values()))
    symbol["v"] = 1
    symbol["debounce"] = {w: m[0] if m else [] for w, m in symbol["debounce"].items()}
    Engine.from_state(_rules(), state)
