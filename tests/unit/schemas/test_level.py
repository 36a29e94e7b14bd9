"""The level record (schemas/level.py) and the price_level signal: what they refuse."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.alert import Alert
from schemas.level import Level, LevelSpec
from schemas.signals import SIGNAL_ADAPTER, PriceLevel

SUB = "0123456789abcdef"


def spec(**fields: Any) -> LevelSpec:
    return LevelSpec.model_validate_json(json.dumps(fields), strict=True)


def test_above_or_below_gives_direction_and_price() -> None:
    above = spec(symbol="2513.HK", above=500)
    assert (above.direction, above.price, above.note) == ("above", 500, None)
    below = spec(symbol="0700.HK", below=300.5, note="take profit")
    assert (below.direction, below.price, below.note) == ("below", 300.5, "take profit")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"symbol": "2513.HK"}, ""),  # neither
        ({"symbol": "2513.HK", "above": 1, "below": 2}, ""),  # both
        ({"symbol": "2513.HK", "above": 0}, "above"),
        ({"symbol": "2513.HK", "above": -1}, "above"),
        ({"symbol": "2513.HK", "above": 1e9 + 1}, "above"),
        ({"symbol": "2513.HK", "below": True}, "below"),
        ({"symbol": "2513.HK", "below": "500"}, "below"),
        ({"symbol": "25 13.HK", "above": 1}, "symbol"),
        ({"symbol": "x" * 33, "above": 1}, "symbol"),
        ({"symbol": "2513.HK", "above": 1, "colour": "red"}, "colour"),
        ({"symbol": "2513.HK", "above": 1, "note": "a\u202eb"}, "note"),
        ({"symbol": "2513.HK", "above": 1, "note": "n" * 201}, "note"),
    ],
)
def test_refused(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**fields)
    assert next(".".join(map(str, e["loc"])) for e in caught.value.errors()) == field


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        LevelSpec.model_validate_json(f'{{"symbol": "X", "above": {text}}}', strict=True)


def test_the_top_of_the_range_is_allowed() -> None:
    assert spec(symbol="X", above=1e9).price == 1e9


def test_a_level_record_round_trips_and_a_backtest_line_needs_no_subscription() -> None:
    level = Level(
        level_id="00aa11bb22cc33dd",
        symbol="2513.HK",
        above=500,
        subscription_id=SUB,
        created_at=datetime(2026, 2, 13, tzinfo=UTC),
    )
    assert Level.model_validate_json(level.model_dump_json()) == level
    line = Level.model_validate_json('{"level_id": "z500", "symbol": "2513.HK", "above": 500}')
    assert line.subscription_id is None
    with pytest.raises(ValidationError):
        Level.model_validate_json('{"level_id": "bad id", "symbol": "X", "above": 1}')


def test_a_price_level_alert_is_content_addressed_and_keyed_by_symbol() -> None:
    signal = PriceLevel(
        symbol="2513.HK",
        ts=datetime(2026, 2, 13, 2, tzinfo=UTC),
        price=501,
        previous_price=499,
        level=500,
        direction="above",
        subscription_id=SUB,
        level_id="L1",
    )
    assert SIGNAL_ADAPTER.validate_json(signal.model_dump_json()) == signal
    alert = Alert.of(signal, datetime(2026, 2, 13, tzinfo=UTC))
    assert (alert.kind, alert.subject) == ("price_level", "2513.HK")
    other = signal.model_copy(update={"subscription_id": "fedcba9876543210"})
    assert Alert.of(other, alert.emitted_at).alert_id != alert.alert_id
    # The same crossing again (same ts and prices): the same alert, delivered once.
    again = PriceLevel.model_validate_json(signal.model_dump_json())
    assert Alert.of(again, datetime(2027, 1, 1, tzinfo=UTC)).alert_id == alert.alert_id
