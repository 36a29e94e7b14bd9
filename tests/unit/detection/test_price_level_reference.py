"""Price levels against the naive reference (tests/unit/naive_price_level.py).

Random feeds over a few symbols, with levels armed, re-armed (same id, new price or
direction) and disarmed between ticks, prices drawn mostly from the levels' own prices
(so `p == X` and `price == X` happen often), and late ticks: the engine and the naive
reference must give the same price_level signals in the same order, tick by tick. The
book's state, written and read back at random points, must change nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.signals import LevelDirection
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.price_level import ArmedLevel, LevelBook
from services.detection.record_high import Late
from services.detection.rules import Rules
from tests.unit.naive_price_level import NaivePriceLevels, NLevel
from tests.unit.strategies import listed_or_free_price

HK = ZoneInfo("Asia/Hong_Kong")
SYMBOLS = ["2513.HK", "0700.HK", "600519.SH", "X"]
PRICES = [9.0, 10.0, 10.5, 11.0, 12.0, 498.0, 500.0, 500.01]
LEVEL_IDS = ["a", "b", "10", "9", "level-1", "Z"]  # "10" < "9" < "Z" < "a" as strings
SUBS = [None, "0123456789abcdef", "fedcba9876543210"]
START = datetime(2026, 2, 13, 9, 30, tzinfo=HK)
STEPS = [0, 0, 1, 2, 60, 3600, 86400, -2, -5, -6, -60]


@st.composite
def levels(draw: st.DrawFn) -> NLevel:
    return NLevel(
        draw(st.sampled_from(LEVEL_IDS)),
        draw(st.sampled_from(SYMBOLS)),
        draw(st.sampled_from(["above", "below"])),
        draw(listed_or_free_price(PRICES, 1.0, 600.0, 2, 5)),
        draw(st.sampled_from(SUBS)),
    )


@st.composite
def feeds(draw: st.DrawFn) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    clock = START
    for _ in range(draw(st.integers(1, 80))):
        roll = draw(st.integers(0, 9))
        if roll == 0:
            events.append(("arm", draw(levels())))
        elif roll == 1:
            events.append(("disarm", draw(st.sampled_from(LEVEL_IDS))))
        elif roll == 2:
            events.append(("restore", None))
        else:
            clock += timedelta(seconds=draw(st.sampled_from(STEPS)))
            price = draw(listed_or_free_price(PRICES, 1.0, 600.0, 2, 4))
            events.append(("tick", (draw(st.sampled_from(SYMBOLS)), clock, price)))
    return events


def armed(level: NLevel) -> ArmedLevel:
    direction: LevelDirection = "above" if level.direction == "above" else "below"
    return ArmedLevel(level.level_id, level.symbol, direction, level.price, level.subscription_id)


def view(result: Late | list[Any]) -> list[dict[str, Any]] | str:
    if isinstance(result, Late):
        return "late"
    return [s.model_dump() for s in result if s.kind == "price_level"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(levels(), max_size=6), feeds())
def test_price_levels_match_the_naive_reference(
    initial: list[NLevel], events: list[tuple[str, Any]]
) -> None:
    book = LevelBook()
    engine = Engine(Rules.from_mapping({"divergence": []}), book)
    naive = NaivePriceLevels()
    for level in initial:
        book.arm(armed(level))
        naive.arm(level)
    for what, event in events:
        if what == "arm":
            engine.levels.arm(armed(event))  # type: ignore[union-attr]
            naive.arm(event)
        elif what == "disarm":
            engine.levels.disarm(event)  # type: ignore[union-attr]
            naive.disarm(event)
        elif what == "restore":
            engine.levels = LevelBook.from_state(engine.levels.to_state())  # type: ignore[union-attr]
        else:
            symbol, ts, price = event
            got = view(engine.process(Tick(symbol=symbol, ts=ts, price=price)))
            assert got == naive.tick(symbol, ts, price), event
    assert len(engine.levels or ()) == len(naive.levels)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["above", "below"]), st.integers(1, 40)), max_size=40),
    st.lists(st.tuples(st.booleans(), st.integers(1, 40), st.integers(1, 40)), max_size=60),
)
def test_the_book_fires_what_a_scan_of_every_level_fires(
    specs: list[tuple[str, int]], moves: list[tuple[bool, int, int]]
) -> None:
    """Many levels on one symbol, ties included: the bisection (and the quiet band it
    remembers) finds exactly the levels the rule, applied to each level in turn, finds.
    Moves mostly go on from the last price (the band's case), sometimes from another
    (a p the band was not built for)."""
    book = LevelBook()
    scan: list[ArmedLevel] = []
    for n, (name, x) in enumerate(specs):
        direction: LevelDirection = "above" if name == "above" else "below"
        level = ArmedLevel(f"L{n:03d}", "S", direction, x / 4, None)
        book.arm(level)
        scan.append(level)
    last = 20 / 4
    for jump, start, end in moves:
        p, q = (start / 4 if jump else last), end / 4
        want = [
            lv
            for lv in scan
            if (lv.direction == "above" and p < lv.price <= q)
            or (lv.direction == "below" and p > lv.price >= q)
        ]
        assert book.crossed("S", p, q) == sorted(want, key=lambda lv: lv.level_id), (p, q)
        last = q
