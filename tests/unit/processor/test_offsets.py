"""The commit rule of the processor's consumer: never past a record not acked."""

from __future__ import annotations

import logging

import pytest

from services.processor.offsets import HeldCommits, commit_offset


def run(acked: list[int], committed: int | None) -> tuple[int | None, list[int], set[int]]:
    index = set(acked)
    offset = commit_offset(acked, index, committed)
    return offset, acked, index


def test_a_contiguous_run_from_the_committed_offset_is_committed() -> None:
    offset, left, index = run([12, 10, 11], committed=10)
    assert offset == 13
    assert left == []
    assert index == set()


def test_a_run_stops_at_the_first_offset_not_acked() -> None:
    offset, left, index = run([10, 11, 12, 14, 15], committed=10)
    assert offset == 13
    assert left == [14, 15]
    assert index == {14, 15}


def test_nothing_is_committed_while_the_committed_offset_itself_is_not_acked() -> None:
    # faust's own rule let a run starting one past the committed offset through.
    assert run([11, 12, 13], committed=10) == (None, [11, 12, 13], {11, 12, 13})
    assert run([15, 16], committed=10)[0] is None


def test_acks_behind_the_committed_offset_are_dropped() -> None:
    offset, left, index = run([5, 6, 7, 10, 11], committed=10)
    assert offset == 12
    assert left == []
    assert index == set()
    offset, left, index = run([5, 6, 7], committed=10)
    assert offset is None
    assert left == []
    assert index == set()


def test_without_a_known_committed_offset_the_lowest_acked_run_counts() -> None:
    offset, left, _ = run([3, 4, 5, 9], committed=None)
    assert offset == 6
    assert left == [9]


def test_nothing_acked_commits_nothing() -> None:
    assert run([], committed=10)[0] is None
    assert run([], committed=None)[0] is None


def test_a_commit_held_at_one_offset_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    held = HeldCommits(warn_after_s=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="marketsignal.processor"):
        held.note(("ticks", 2), 100, 105)
        now[0] = 29.0
        held.note(("ticks", 2), 100, 105)
        assert not caplog.records
        now[0] = 30.0
        held.note(("ticks", 2), 100, 105)
        now[0] = 90.0
        held.note(("ticks", 2), 100, 105)
    assert [r.getMessage() for r in caplog.records] == [
        "ticks[2]: offset 100 not processed for 30 s; later ones are (from 105): commit held back"
    ]


def test_a_commit_that_moves_restarts_the_clock(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    held = HeldCommits(warn_after_s=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="marketsignal.processor"):
        held.note(("ticks", 0), 100, 105)
        now[0] = 20.0
        held.note(("ticks", 0), 103, 105)  # committed moved on meanwhile
        now[0] = 40.0
        held.note(("ticks", 0), 103, 105)
        assert not caplog.records
        now[0] = 50.0
        held.note(("ticks", 0), 103, 105)
    assert len(caplog.records) == 1
