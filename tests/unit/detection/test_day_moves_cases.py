"""The day moves' rules one by one (docs/signals.md, "Day moves"), with worked examples."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.tick import Tick
from services.detection.boards import board_of, limit_prices
from services.detection.day_moves import DayMoves
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import Rules, RulesError

SH = ZoneInfo("Asia/Shanghai")
DAY1 = datetime(2026, 2, 12, 9, 30, tzinfo=SH)
DAY2 = DAY1 + timedelta(days=1)
ALL = """
divergence = []
[price_move]
[limits]
[volume_spike]
"""


def engine(extra: str = "", base: str = ALL) -> Engine:
    return Engine(Rules.from_toml_text(base + extra))


def feed(
    e: Engine, symbol: str, *ticks: tuple[datetime, float] | tuple[datetime, float, int]
) -> list[list[Any]]:
    out: list[list[Any]] = []
    for t in ticks:
        volume = t[2] if len(t) == 3 else 0
        result = e.process(Tick(symbol=symbol, ts=t[0], price=t[1], volume=volume))
        assert not isinstance(result, Late)
        out.append([s for s in result if s.kind != "record_high"])
    return out


def kinds(signals: list[Any]) -> list[tuple[Any, ...]]:
    return [(s.kind, getattr(s, "direction", None), getattr(s, "phase", None)) for s in signals]


def bar(e: Engine, symbol: str, day: date, close: float, volume: int | None = None) -> None:
    e.add_bar(symbol, day.toordinal(), close * 2, close, volume)


# -- previous close ---------------------------------------------------------------------


def test_previous_close_is_the_greatest_ts_with_ties_to_the_later_arrival() -> None:
    e = engine()
    feed(
        e,
        "600001.SH",
        (DAY1, 10.0),
        (DAY1 + timedelta(hours=5), 12.0),  # the greatest ts ...
        (DAY1 + timedelta(hours=5, seconds=-3), 9.0),  # ... not the last arrival
        (DAY1 + timedelta(hours=5), 10.0),  # a tie with the greatest: the later one wins
    )
    [[move]] = feed(e, "600001.SH", (DAY2, 10.5))
    assert (move.previous_close, move.previous_close_date, move.level_pct) == (
        10.0,
        "2026-02-12",
        5.0,
    )


def test_the_first_previous_close_comes_from_the_latest_bar_before_the_first_tick() -> None:
    e = engine()
    bar(e, "600001.SH", date(2026, 2, 10), 8.0)
    bar(e, "600001.SH", date(2026, 2, 11), 10.0)
    bar(e, "600001.SH", date(2026, 2, 12), 99.0)  # overlaps the ticks: ignored
    [[move]] = feed(e, "600001.SH", (DAY1, 10.6))
    assert (move.previous_close, move.previous_close_date) == (10.0, "2026-02-11")


def test_no_previous_close_no_day_move_on_the_first_date() -> None:
    e = engine()
    assert feed(e, "600001.SH", (DAY1, 10.0), (DAY1 + timedelta(minutes=1), 20.0)) == [[], []]


def test_a_late_tick_across_midnight_changes_no_close_and_is_not_evaluated() -> None:
    e = engine("[ticks]\nallowed_lateness_s = 10\n")
    midnight = datetime(2026, 2, 13, tzinfo=SH)
    feed(
        e,
        "600001.SH",
        (midnight - timedelta(hours=1), 10.0),
        (midnight + timedelta(seconds=1), 10.0),
    )
    # Dated the day before, accepted (within 10 s), but that date is over: nothing.
    assert feed(e, "600001.SH", (midnight - timedelta(seconds=2), 20.0)) == [[]]
    [[move]] = feed(e, "600001.SH", (midnight + timedelta(days=1, hours=10), 10.5))
    assert move.previous_close == 10.0  # the close of 13 Feb, not the late 20.0


# -- price_move -------------------------------------------------------------------------


def test_one_tick_over_two_levels_emits_the_larger_only_and_then_the_next() -> None:
    e = engine()
    feed(e, "2513.HK", (DAY1, 100.0))
    out = feed(
        e,
        "2513.HK",
        (DAY2, 112.0),  # over 5 and 10: one signal at 10
        (DAY2 + timedelta(minutes=1), 106.0),  # back under 10: not re-armed
        (DAY2 + timedelta(minutes=2), 111.0),  # nothing
        (DAY2 + timedelta(minutes=3), 123.4),  # the seed's +23.4%: 20
    )
    assert [[(s.direction, s.level_pct) for s in x] for x in out] == [
        [("up", 10.0)],
        [],
        [],
        [("up", 20.0)],
    ]
    assert out[3][0].change_pct == pytest.approx(23.4)


def test_levels_are_per_date_and_direction() -> None:
    e = engine()
    feed(e, "2513.HK", (DAY1, 100.0))
    out = feed(e, "2513.HK", (DAY2, 106.0), (DAY2 + timedelta(minutes=1), 94.0))
    assert [[(s.direction, s.level_pct) for s in x] for x in out] == [
        [("up", 5.0)],
        [("down", 5.0)],
    ]
    # 13 Feb closed at 94: 14 Feb starts with nothing reached.
    [[again]] = feed(e, "2513.HK", (DAY2 + timedelta(days=1), 98.8))
    assert (again.direction, again.level_pct, again.previous_close) == ("up", 5.0, 94.0)


# -- limit_hit --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "board"),
    [
        ("600519.SH", "main"),
        ("601988.SH", "main"),
        ("000001.SZ", "main"),
        ("003816.SZ", "main"),
        ("688981.SH", "star"),
        ("689009.SH", "star"),
        ("300750.SZ", "chinext"),
        ("301001.SZ", "chinext"),
        ("430047.BJ", "bse"),
        ("830799.BJ", "bse"),
        ("920001.BJ", "bse"),
        ("000688.SH", None),  # the STAR 50 index
        ("510300.SH", None),  # a fund
        ("004001.SZ", None),
        ("910001.BJ", None),
        ("0981.HK", None),
        ("600519.sh", None),  # case-sensitive
        ("6005190.SH", None),
        ("60051.SH", None),
    ],
)
def test_boards_by_code(symbol: str, board: str | None) -> None:
    assert board_of(symbol) == board


@pytest.mark.parametrize(
    ("close", "pct", "up", "down"),
    [
        (20.47, 20.0, 24.56, 16.38),  # 24.564 and 16.376
        (10.05, 10.0, 11.06, 9.05),  # 11.055 rounds half up (a float product: 11.054999...)
        (3.35, 10.0, 3.69, 3.02),  # 3.685 and 3.015, both halves, both up
        (11.11, 5.0, 11.67, 10.55),  # 11.6655 and 10.5545
        (0.01, 10.0, 0.01, 0.01),
    ],
)
def test_limits_are_decimal_and_round_half_up(
    close: float, pct: float, up: float, down: float
) -> None:
    assert limit_prices(close, pct) == (up, down)


def test_at_the_limit_seals_one_cent_under_opens_and_re_seals_with_counts() -> None:
    e = engine()
    feed(e, "688001.SH", (DAY1, 20.47))
    out = feed(
        e,
        "688001.SH",
        (DAY2, 24.55),  # one cent under 24.56: free
        (DAY2 + timedelta(minutes=1), 24.56),  # exactly at it: sealed #1
        (DAY2 + timedelta(minutes=2), 24.56),  # still sealed: nothing
        (DAY2 + timedelta(minutes=3), 24.55),  # opened (炸板), seals 1
        (DAY2 + timedelta(minutes=4), 24.56),  # re-sealed #2
    )
    hits = [[(s.phase, s.seals) for s in x if s.kind == "limit_hit"] for x in out]
    assert hits == [[], [("sealed", 1)], [], [("opened", 1)], [("sealed", 2)]]
    sealed = out[1][-1]
    assert (sealed.limit_price, sealed.limit_pct, sealed.previous_close) == (24.56, 20.0, 20.47)


def test_st_stocks_use_st_pct_on_the_main_board_only() -> None:
    e = engine('st = ["600001.SH", "688001.SH"]\n', base=ALL.replace("[volume_spike]\n", ""))
    feed(e, "600001.SH", (DAY1, 10.0))
    feed(e, "688001.SH", (DAY1, 10.0))
    [[_move, hit]] = feed(e, "600001.SH", (DAY2, 10.5))
    assert (hit.limit_pct, hit.limit_price, hit.phase) == (5.0, 10.5, "sealed")
    [x] = feed(e, "688001.SH", (DAY2, 10.5))  # STAR: 20%, the st list is ignored
    assert [s.kind for s in x] == ["price_move"]


def test_a_new_listing_has_no_limit_for_no_limit_days_counted_over_bars_and_ticks() -> None:
    rules = """
divergence = []
[limits]
no_limit_days = 3
listings = { "688999.SH" = "2026-02-09" }
"""
    e = Engine(Rules.from_toml_text(rules))
    bar(e, "688999.SH", date(2026, 2, 6), 5.0)  # before the listing date: not counted
    bar(e, "688999.SH", date(2026, 2, 9), 10.0)  # day 1
    bar(e, "688999.SH", date(2026, 2, 10), 30.0)  # day 2
    first = datetime(2026, 2, 11, 10, 0, tzinfo=SH)
    # Day 3 (a tick): +300%, no limit.
    assert feed(e, "688999.SH", (first, 120.0)) == [[]]
    # Day 4: the limit applies (20% of 120 -> 144.00).
    [[hit]] = feed(e, "688999.SH", (first + timedelta(days=1), 144.0))
    assert (hit.phase, hit.limit_price) == ("sealed", 144.0)


def test_the_signal_order_within_one_tick() -> None:
    e = engine("[record_high]\nwindows = ['all_time']\n")
    for day_of_month in range(9, 14):
        e.add_bar("600001.SH", date(2026, 2, day_of_month).toordinal(), 10.0, 10.0, 100)
    day = datetime(2026, 2, 16, 9, 30, tzinfo=SH)
    e.process(Tick(symbol="600001.SH", ts=day, price=8.9, volume=10))  # down: sealed at 9.00
    result = e.process(
        Tick(symbol="600001.SH", ts=day + timedelta(minutes=1), price=11.0, volume=500)
    )
    assert not isinstance(result, Late)
    assert kinds(result) == [
        ("record_high", None, None),
        ("price_move", "up", None),
        ("limit_hit", "down", "opened"),
        ("limit_hit", "up", "sealed"),
        ("volume_spike", None, None),
    ]


# -- volume_spike -----------------------------------------------------------------------


def test_volume_spike_over_the_latest_dates_with_a_volume() -> None:
    e = engine("", base="divergence = []\n[volume_spike]\ndays = 2\n")
    bar(e, "0700.HK", date(2026, 2, 9), 300.0, 100)
    bar(e, "0700.HK", date(2026, 2, 10), 300.0, None)  # no volume: skipped, not zero
    bar(e, "0700.HK", date(2026, 2, 11), 300.0, 300)
    day = datetime(2026, 2, 12, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    out = feed(
        e,
        "0700.HK",
        (day, 300.0, 300),
        (day + timedelta(minutes=1), 301.0, 99),
        (day + timedelta(minutes=2), 301.0, 1),
    )
    assert [[(s.multiple, s.volume, s.average_volume, s.days) for s in x] for x in out] == [
        [],
        [],
        [(2.0, 400, 200.0, 2)],  # mean of 100 and 300; 399 < 400 <= 400
    ]
    # 12 Feb's 400 counts as a daily volume from 13 Feb on: mean (300 + 400) / 2.
    [[spike]] = feed(e, "0700.HK", (day + timedelta(days=1), 300.0, 1750))
    assert (spike.multiple, spike.average_volume) == (5.0, 350.0)


def test_too_few_dates_or_a_zero_mean_evaluate_nothing() -> None:
    e = engine("", base="divergence = []\n[volume_spike]\ndays = 3\n")
    bar(e, "0700.HK", date(2026, 2, 10), 300.0, 100)
    bar(e, "0700.HK", date(2026, 2, 11), 300.0, 100)
    day = datetime(2026, 2, 12, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    assert feed(e, "0700.HK", (day, 300.0, 10_000)) == [[]]
    e = engine("", base="divergence = []\n[volume_spike]\ndays = 1\n")
    bar(e, "HSTECH.HK", date(2026, 2, 11), 5000.0, 0)
    assert feed(e, "HSTECH.HK", (day, 5000.0, 0), (day + timedelta(seconds=1), 5000.0, 5)) == [
        [],
        [],
    ]


# -- state ------------------------------------------------------------------------------


def test_the_state_round_trips_mid_day_with_the_same_signals_after() -> None:
    e = engine()
    bar(e, "688001.SH", date(2026, 2, 11), 20.47, 50)
    feed(e, "688001.SH", (DAY1, 24.56, 120), (DAY1 + timedelta(minutes=1), 21.5, 10))
    moves = e.day_moves["688001.SH"]
    state = moves.to_state()
    assert state["v"] == 1
    restored = DayMoves.from_state("688001.SH", moves.config, moves.clock, state)
    assert restored.to_state() == state
    later = [
        (DAY1 + timedelta(minutes=2), 24.56, 1),
        (DAY1 + timedelta(minutes=3), 16.0, 1),
        (DAY2, 30.0, 500),
    ]
    for when, price, volume in later:
        us = int(when.timestamp() * 1_000_000)
        want = moves.update(us, price, volume, "trade")
        got = restored.update(us, price, volume, "trade")
        assert got == want


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[price_move]\nlevels_pct = [5.0, 5.0]", "price_move.levels_pct: level 5 is listed twice"),
        ("[price_move]\nlevels_pct = [0.0]", "price_move.levels_pct.0"),
        ("[price_move]\nlevels_pct = [-5.0]", "price_move.levels_pct.0"),
        (
            "[volume_spike]\nmultiples = [2.0, 2.0]",
            "volume_spike.multiples: multiple 2 is listed twice",
        ),
        ("[volume_spike]\nmultiples = [0]", "volume_spike.multiples.0"),
        ("[volume_spike]\ndays = 0", "volume_spike.days"),
        ("[limits]\nmain_pct = -1.0", "limits.main_pct"),
        ("[limits]\nst_pct = -0.5", "limits.st_pct"),
        ('[limits]\nst = ["600001.SH", "600001.SH"]', "limits.st: 600001.SH is listed twice"),
        ('[limits]\nlistings = { "688001.SH" = "2026-02-30" }', "limits.listings.688001.SH"),
        ('[limits]\nlistings = { "688001.SH" = "soon" }', "limits.listings.688001.SH"),
        ("[limits]\nno_limit_days = -1", "limits.no_limit_days"),
        ("[limits]\nup_pct = 10.0", "limits.up_pct: unknown key"),
    ],
)
def test_config_errors_name_the_key(toml: str, named: str) -> None:
    with pytest.raises(RulesError) as err:
        Rules.from_toml_text(toml)
    assert named in str(err.value)


def test_each_signal_is_off_unless_its_table_is_present() -> None:
    e = engine("", base="divergence = []\n")
    assert e.day_config is None
    feed(e, "600001.SH", (DAY1, 10.0, 1))
    assert feed(e, "600001.SH", (DAY2, 11.0, 100)) == [[]]
    rules = Rules.from_toml_text("[limits]\nlistings = { '688001.SH' = 2026-02-09 }\n")
    assert rules.limits is not None
    assert rules.limits.listings == {"688001.SH": date(2026, 2, 9)}  # a TOML date works too
