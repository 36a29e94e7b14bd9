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
