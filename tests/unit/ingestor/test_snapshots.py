"""Snapshots to trades (services/ingestor/snapshots.py): a tick only when the price or the
cumulative volume changed, the volume's increase as its volume, a new day when the
cumulative volume goes down."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.ingestor.snapshots import Snapshot, SnapshotTrades, problem


def snap(price: float, volume: int, ts: Any = 0, symbol: str = "600519.SH") -> Snapshot:
    return Snapshot(symbol=symbol, ts=ts, price=price, volume=volume)


def volumes(trades: SnapshotTrades, *snapshots: Snapshot) -> list[int | None]:
    out = []
    for s in snapshots:
        fields = trades.trade(s)
        out.append(None if fields is None else fields["volume"])
    return out


def test_the_first_snapshot_carries_the_volume_so_far_then_deltas() -> None:
    trades = SnapshotTrades()
    assert trades.trade(snap(1500.0, 1000, ts="2026-02-13T10:00:03")) == {
        "symbol": "600519.SH",
        "ts": "2026-02-13T10:00:03",  # zone-less: the screener reads it in the exchange zone
        "price": 1500.0,
        "volume": 1000,
        "kind": "trade",
    }
    assert volumes(trades, snap(1500.0, 1300), snap(1501.0, 1300), snap(1501.0, 1300)) == [
        300,  # more volume, same price: a trade
        0,  # a new price, no more volume: the price moved
        None,  # nothing changed: no tick
    ]


def test_a_lower_cumulative_volume_is_a_new_day() -> None:
    trades = SnapshotTrades()
    assert volumes(trades, snap(10.0, 5000), snap(10.0, 5200), snap(10.5, 300)) == [
        5000,
        200,
        300,  # the counter restarted: the new day's volume so far
    ]
    assert trades.resets == 1


def test_symbols_are_kept_apart() -> None:
    trades = SnapshotTrades()
    a, b = "600519.SH", "0700.HK"
    assert volumes(
        trades,
        snap(10.0, 100, symbol=a),
        snap(500.0, 100, symbol=b),
        snap(10.0, 100, symbol=a),
        snap(500.0, 400, symbol=b),
    ) == [100, 100, None, 300]


def test_beyond_the_bound_new_symbols_still_tick_but_are_not_remembered() -> None:
    trades = SnapshotTrades(symbols_max=1)
    assert volumes(trades, snap(1.0, 10, symbol="A"), snap(1.0, 10, symbol="B")) == [10, 10]
    assert set(trades.last) == {"A"}


@pytest.mark.parametrize(
    ("price", "volume", "field"),
    [
        (0.0, 1, "price"),
        (-1.0, 1, "price"),
        (float("nan"), 1, "price"),
        (float("inf"), 1, "price"),
        ("12.5", 1, "price"),
        (True, 1, "price"),
        (12.5, -1, "volume"),
        (12.5, 1.5, "volume"),
    ],
)
def test_unusable_snapshots_are_named(price: Any, volume: Any, field: str) -> None:
    found = problem(Snapshot("X", 0, price, volume))
    assert found is not None
    assert found[0] == field


def test_a_usable_snapshot_has_no_problem() -> None:
    assert problem(snap(12.5, 0)) is None


# A day of snapshots: each step moves the price, the cumulative volume, both or neither.
_steps = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 5_000)),
    max_size=60,
)


@given(first=st.integers(0, 10_000), steps=_steps)
def test_the_ticks_volumes_add_up_to_the_last_cumulative_volume(
    first: int, steps: list[tuple[int, int]]
) -> None:
    trades = SnapshotTrades()
    price, volume = 100.0, first
    total = 0
    fields = trades.trade(snap(price, volume))
    assert fields is not None
    total += fields["volume"]
    for price_step, volume_step in steps:
        changed = price_step > 0 or volume_step > 0
        price, volume = price + price_step, volume + volume_step
        fields = trades.trade(snap(price, volume))
        assert (fields is not None) == changed  # a tick exactly when something changed
        if fields is not None:
            assert fields["volume"] == volume_step
            total += fields["volume"]
    assert total == volume


@given(
    days=st.lists(st.lists(st.integers(1, 1_000), min_size=1, max_size=20), min_size=1, max_size=5)
)
def test_across_new_days_each_days_ticks_add_up_to_its_volume(days: list[list[int]]) -> None:
    trades = SnapshotTrades()
    previous_last: int | None = None
    for day in days:
        cumulative = list(itertools.accumulate(day))
        # A new day is seen when it starts below where the last one ended.
        assume(previous_last is None or cumulative[0] < previous_last)
        total = 0
        for volume in cumulative:
            fields = trades.trade(snap(50.0, volume))
            assert fields is not None  # the volume grew: a trade
            total += fields["volume"]
        assert total == cumulative[-1]
        previous_last = cumulative[-1]
    assert trades.resets == len(days) - 1
