"""Price levels, case by case: the contract's examples and the choices docs/subscriptions.md
writes down where it is silent."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas.level import Level
from schemas.signals import LevelDirection, PriceLevel
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.price_level import ArmedLevel, LevelBook, crossing
from services.detection.record_high import Late
from services.detection.rules import Rules
from services.detection.state import StateVersionError

HK = ZoneInfo("Asia/Hong_Kong")
T0 = datetime(2026, 2, 13, 9, 30, tzinfo=HK)
SUB = "0123456789abcdef"


def engine(*levels: ArmedLevel) -> Engine:
    return Engine(Rules.from_mapping({"divergence": []}), LevelBook(list(levels)))


def feed(eng: Engine, prices: list[float], symbol: str = "2513.HK") -> list[list[PriceLevel]]:
    out = []
    for n, price in enumerate(prices):
        result = eng.process(Tick(symbol=symbol, ts=T0 + timedelta(seconds=n), price=price))
        assert not isinstance(result, Late)
        out.append([s for s in result if isinstance(s, PriceLevel)])
    return out


def above(x: float, level_id: str = "L1", symbol: str = "2513.HK") -> ArmedLevel:
    return ArmedLevel(level_id, symbol, "above", x, SUB)


def below(x: float, level_id: str = "L1", symbol: str = "2513.HK") -> ArmedLevel:
    return ArmedLevel(level_id, symbol, "below", x, SUB)


@pytest.mark.parametrize(
    ("direction", "x", "p", "price", "fires"),
    [
        ("above", 500, 499, 500, True),  # reaching X is crossing it
        ("above", 500, 499, 501, True),
        ("above", 500, 500, 501, False),  # p == X: it was already there
        ("above", 500, 501, 502, False),
        ("above", 500, 499, 499.99, False),
        ("below", 300, 301, 300, True),
        ("below", 300, 300, 299, False),
        ("below", 300, 301, 300.01, False),
        ("above", 500, None, 600, False),  # no previous price: no crossing
    ],
)
def test_the_rule(
    direction: LevelDirection, x: float, p: float | None, price: float, fires: bool
) -> None:
    assert crossing(direction, x, p, price) is fires
    book = LevelBook([ArmedLevel("L", "S", direction, x, None)])
    assert bool(book.crossed("S", p, price)) is fires


def test_the_first_tick_never_fires_and_the_signal_carries_the_contract_fields() -> None:
    fired = feed(engine(above(500)), [510, 490, 500])
    assert fired[0] == []
    assert fired[1] == []
    (signal,) = fired[2]
    assert signal.model_dump() == {
        "kind": "price_level",
        "symbol": "2513.HK",
        "ts": T0 + timedelta(seconds=2),
        "price": 500,
        "previous_price": 490,
        "level": 500,
        "direction": "above",
        "subscription_id": SUB,
        "level_id": "L1",
    }
    assert signal.ts.tzinfo is not None
    assert signal.ts.utcoffset() == timedelta(hours=8)


def test_a_level_fires_again_at_every_later_crossing() -> None:
    fired = feed(engine(above(500)), [490, 505, 510, 495, 500, 499, 501])
    assert [len(f) for f in fired] == [0, 1, 0, 0, 1, 0, 1]


def test_a_gap_through_several_levels_fires_each_in_level_id_order() -> None:
    levels = [above(510, "b"), above(490, "a"), above(500, "10"), above(520, "9"), above(600, "c")]
    (_, fired) = feed(engine(*levels), [480, 530])
    # level_id order as strings: "10" < "9" < "a" < "b"; 600 is not reached.
    assert [s.level_id for s in fired] == ["10", "9", "a", "b"]


def test_only_the_direction_of_the_move_fires() -> None:
    eng = engine(above(500, "up"), below(500, "down"))
    assert [[s.level_id for s in f] for f in feed(eng, [490, 501, 490])] == [[], ["up"], ["down"]]


def test_p_is_the_previous_accepted_tick_even_before_the_level_existed() -> None:
    eng = engine()
    feed(eng, [490])
    eng.levels.arm(above(500))  # type: ignore[union-attr]
    (fired,) = feed(eng, [505])
    assert [s.previous_price for s in fired] == [490]


def test_a_late_tick_is_not_accepted_so_it_is_not_p() -> None:
    eng = engine(above(500))
    assert not isinstance(eng.process(Tick(symbol="2513.HK", ts=T0, price=490)), Late)
    late = Tick(symbol="2513.HK", ts=T0 - timedelta(seconds=6), price=510)
    assert isinstance(eng.process(late), Late)
    result = eng.process(Tick(symbol="2513.HK", ts=T0, price=505))
    assert not isinstance(result, Late)
    assert [s.previous_price for s in result if isinstance(s, PriceLevel)] == [490]


def test_other_symbols_neither_fire_nor_move_p() -> None:
    eng = engine(above(500))
    feed(eng, [490])
    feed(eng, [510], symbol="0700.HK")
    assert [len(f) for f in feed(eng, [495, 501])] == [0, 1]


def test_rearming_an_id_replaces_the_level_and_disarming_stops_it() -> None:
    book = LevelBook([above(500)])
    book.arm(below(400))  # the same id, changed
    assert len(book) == 1
    assert book.crossed("2513.HK", 490, 510) == []
    assert book.crossed("2513.HK", 410, 390) == [below(400)]
    assert book.disarm("L1") is True
    assert book.disarm("L1") is False
    assert book.crossed("2513.HK", 410, 390) == []
    assert not book.has_symbol("2513.HK")


def test_same_price_levels_of_several_subscriptions_all_fire() -> None:
    book = LevelBook([above(500, "x"), above(500, "y"), above(500, "z")])
    book.disarm("y")
    assert [lv.level_id for lv in book.crossed("2513.HK", 499, 500)] == ["x", "z"]


def test_records_of_the_levels_topic_arm_and_tombstones_disarm() -> None:
    book = LevelBook()
    level = Level(level_id="abc", symbol="2513.HK", below=300, subscription_id=SUB)
    book.apply("abc", level)
    assert book.get("abc") == ArmedLevel("abc", "2513.HK", "below", 300, SUB)
    book.apply("abc", None)
    book.apply("abc", None)  # a tombstone read twice (a replay) changes nothing
    assert len(book) == 0


def test_state_round_trips_and_refuses_an_unknown_version() -> None:
    book = LevelBook(
        [above(500, "b"), below(300, "a", "0700.HK"), ArmedLevel("c", "X", "above", 1.5, None)]
    )
    state = book.to_state()
    again = LevelBook.from_state(state)
    assert again.levels() == book.levels()
    assert again.to_state() == state
    assert again.crossed("2513.HK", 499, 501) == [above(500, "b")]
    with pytest.raises(StateVersionError):
        LevelBook.from_state({**state, "v": 99})


def test_a_book_without_the_symbol_costs_no_search() -> None:
    book = LevelBook([above(500)])
    assert book.crossed("0700.HK", 1, 1000) == []
    assert book.evaluate("2513.HK", T0, None, 600) == []
