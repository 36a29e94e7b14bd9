"""A source partition's records are processed without holes, or rewound."""

from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from services.processor.continuity import Continuity


class Rec(NamedTuple):
    partition: int
    offset: int


def test_a_hole_holds_back_the_partition_and_asks_for_a_rewind() -> None:
    c = Continuity()
    ok, rewind = c.admit([Rec(0, 10), Rec(0, 11), Rec(1, 5)])
    assert ok == [True, True, True]
    assert rewind == {}
    # 12..13 of partition 0 never arrived; partition 1 goes on.
    ok, rewind = c.admit([Rec(0, 14), Rec(1, 6), Rec(0, 15)])
    assert ok == [False, True, False]
    assert rewind == {0: 12}
    # Stale records fetched before the seek still hold back; then the refetch passes.
    ok, rewind = c.admit([Rec(0, 16)])
    assert (ok, rewind) == ([False], {0: 12})
    ok, rewind = c.admit([Rec(0, 12), Rec(0, 13), Rec(0, 14)])
    assert (ok, rewind) == ([True, True, True], {})
    assert c.rewinds == 2


def test_a_replay_from_an_earlier_offset_is_admitted() -> None:
    c = Continuity()
    c.admit([Rec(0, 10), Rec(0, 11)])
    ok, rewind = c.admit([Rec(0, 3), Rec(0, 4)])  # a seek to the committed offset
    assert (ok, rewind) == ([True, True], {})
    assert c.next[0] == 5


def test_forgetting_after_a_revocation_admits_any_first_offset() -> None:
    c = Continuity()
    c.admit([Rec(2, 7)])
    c.forget()
    assert c.admit([Rec(2, 70)]) == ([True], {})


@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60))
def test_admitted_records_of_a_partition_never_skip_an_offset(offsets: list[int]) -> None:
    c = Continuity()
    seen: list[int] = []
    for offset in offsets:
        ok, _ = c.admit([Rec(0, offset)])
        if ok[0]:
            seen.append(offset)
    # Every admitted record follows the previous one or goes back (a replay).
    for before, after in pairwise(seen):
        assert after <= before + 1


def test_the_first_record_after_an_assignment_must_be_the_committed_offset() -> None:
    c = Continuity()
    committed = {0: 40}
    ok, rewind = c.admit([Rec(0, 45), Rec(1, 9)], committed.get)
    assert (ok, rewind) == ([False, True], {0: 40})
    assert c.admit([Rec(0, 40)], committed.get) == ([True], {})


def test_records_of_a_failed_batch_are_expected_again() -> None:
    c = Continuity()
    c.admit([Rec(0, 10), Rec(0, 11), Rec(1, 5)])
    c.admit([Rec(0, 12), Rec(0, 13), Rec(1, 6)])
    c.undo([Rec(0, 12), Rec(0, 13), Rec(1, 6)])  # that batch raised: never processed
    # The restarted agent's stream goes on after the failed batch: a hole, rewound.
    ok, rewind = c.admit([Rec(0, 14), Rec(1, 7)])
    assert ok == [False, False]
    assert rewind == {0: 12, 1: 6}
    ok, rewind = c.admit([Rec(0, 12), Rec(1, 6)])
    assert (ok, rewind) == ([True, True], {})


def test_undo_never_moves_a_partition_forward() -> None:
    c = Continuity()
    c.admit([Rec(0, 10), Rec(0, 11)])
    c.undo([Rec(0, 20), Rec(2, 3)])  # past what was admitted; a partition never seen
    ok, rewind = c.admit([Rec(0, 12), Rec(2, 9)])
    assert (ok, rewind) == ([True, True], {})


def test_a_rewind_whose_record_does_not_come_is_due_again() -> None:
    c = Continuity()
    c.admit([Rec(0, 10)], now=0.0)
    ok, rewind = c.admit([Rec(0, 14)], now=1.0)
    assert (ok, rewind) == ([False], {0: 11})
    assert c.overdue(now=2.5, after_s=2.0) == {}
    assert c.overdue(now=3.0, after_s=2.0) == {0: 11}
    assert c.overdue(now=4.0, after_s=2.0) == {}  # its clock restarted at 3.0
    # Stale records held back again do not restart the clock.
    c.admit([Rec(0, 15)], now=4.5)
    assert c.overdue(now=5.0, after_s=2.0) == {0: 11}
    # The record comes: nothing is due any more.
    ok, _ = c.admit([Rec(0, 11), Rec(0, 12)], now=5.5)
    assert ok == [True, True]
    assert c.overdue(now=100.0, after_s=2.0) == {}


def test_forget_drops_the_rewinds_under_way() -> None:
    c = Continuity()
    c.admit([Rec(0, 10), Rec(0, 12)], now=0.0)
    c.forget()
    assert c.overdue(now=100.0, after_s=2.0) == {}


def test_a_partition_that_stops_short_of_its_log_end_is_sought_back() -> None:
    """The hole at a partition's end: records faust delivered but the agent never got
    (after a kill -9, faust empties its stream queues), and no later record shows it."""
    c = Continuity()
    c.admit([Rec(2, 450)], now=0.0)
    ends = {2: 503, 5: 218}
    delivered = {2: 502, 5: 217}
    committed = {5: 175}

    def stalled(now: float) -> dict[int, int]:
        return c.stalled([2, 5], committed.get, ends.get, delivered.get, now, 2.0, 10.0)

    assert stalled(1.0) == {}  # clocks start: 451 and 175 must come, the logs go on
    assert stalled(2.9) == {}
    assert stalled(3.0) == {2: 451, 5: 175}
    assert stalled(4.0) == {}  # sought back: the clocks restarted at 3.0
    # Partition 2's records come again; 5 is still stuck.
    c.admit([Rec(2, 451), Rec(2, 452)], now=4.5)
    assert stalled(5.0) == {5: 175}
    assert stalled(6.0) == {}  # 453 must come now: its clock started at 5.0
    c.admit([Rec(2, n) for n in range(453, 503)], now=6.5)
    assert stalled(100.0) == {5: 175}  # 2 reached its end: nothing to wait for


def test_a_partition_faust_has_not_delivered_is_given_longer_before_it_is_sought_back() -> None:
    """faust's fetch loop may not have handed the partition's records over yet (waiting
    its turn): judged after the longer wait; once delivered and never come, the shorter."""
    c = Continuity()
    c.admit([Rec(1, 27)], now=0.0)
    ends, delivered = {1: 49}, {1: 27}

    def stalled(now: float) -> dict[int, int]:
        return c.stalled([1], lambda _p: None, ends.get, delivered.get, now, 2.0, 10.0)

    assert stalled(0.0) == {}
    assert stalled(9.0) == {}
    assert stalled(10.0) == {1: 28}
    delivered[1] = 30  # handed over, never come: the clock restarted at 10.0
    assert stalled(11.0) == {}
    assert stalled(12.0) == {1: 28}


def test_no_partition_is_stalled_while_its_agent_is_busy_or_its_end_unknown() -> None:
    c = Continuity()
    c.admit([Rec(0, 9)], now=0.0)
    ends, delivered = {0: 20}, {0: 19}

    def stalled(now: float, end: dict[int, int] = ends) -> dict[int, int]:
        return c.stalled([0, 1], lambda _p: None, end.get, delivered.get, now, 2.0, 10.0)

    assert stalled(0.0) == {}
    c.busy()  # e.g. a batch held for the levels: nothing could come meanwhile
    assert stalled(2.5) == {}
    assert stalled(4.5) == {0: 10}
    # Unknown end, unknown start (partition 1), a rewind under way: not judged.
    assert stalled(10.0, {}) == {}
    c.admit([Rec(0, 15)], now=10.0)  # a hole: `overdue` follows that one
    assert stalled(10.0) == {}
    assert stalled(20.0) == {}
    c.forget()
    assert c.behind == {}


@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=20),
    st.integers(0, 40),
    st.integers(0, 40),
    st.lists(st.floats(0, 50), min_size=1, max_size=15),
)
def test_only_a_partition_short_of_its_end_is_sought_back_and_not_too_often(
    offsets: list[int], end: int, handed: int, times: list[float]
) -> None:
    c = Continuity()
    c.admit([Rec(0, n) for n in range(min(offsets), max(offsets) + 1)])
    nxt = c.next[0]
    wait = 2.0 if handed >= nxt else 10.0
    times = sorted(times)
    fired = []
    for t in times:
        due = c.stalled([0], lambda _p: None, lambda _p: end, lambda _p: handed, t, 2.0, 10.0)
        assert due in ({}, {0: nxt})
        if due:
            fired.append(t)
    if end <= nxt:
        assert fired == []
    else:
        assert all(b - a >= wait for a, b in pairwise([times[0], *fired]))
        if times[-1] - times[0] >= wait:
            assert fired  # a partition short of its end is not left stuck
