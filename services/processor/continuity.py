"""No record of a source partition is skipped: a hole stops the partition and rewinds it.

The contract: within one assignment, an agent processes each source partition's records
in offset order from where faust sought it (its committed offset, or the log start when
none is committed), with no offset missing. A record at or before the next expected one
passes (a replay after a seek: the stages skip what state already holds).

Why it is needed: faust can deliver a partition's records with a hole (its fetcher
advances the position for a fetched batch that `Consumer.getmany` then partly drops),
and processing past one is never recoverable here. States record the last offset they
hold, so the records in the hole would be skipped as "already applied" for good and
later ticks judged against a state that never saw them; the hole's offsets would never
be acked either, so the commit would stop at its start (the faults found:
docs/reliability.md, G1).

How: `Continuity` remembers, per source partition, the offset that must come next. A
record past it is held back with every later record of that partition in the batch,
and the partition is to be sought back to the missing offset, so the records are
fetched again, in order. A seek whose record does not come is repeated (`overdue`).

A hole at the end of a partition shows no later record: the partition just stops
(`stalled`). Seen after a kill -9: faust delivers records while its recovery seeks the
partitions to their committed offsets, then empties its stream queues when it resumes
the flow, and the records in them are never fetched again (its read offset is past
them). A partition whose log goes past the offset that must come next, and of which
nothing comes while every agent waits, is sought back to that offset: soon if faust
delivered that record, later if not (it may be waiting its turn).
This is plain Python; `rewinds.py` asks faust where partitions start and end, and seeks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol


class Positioned(Protocol):
    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class Continuity:
    def __init__(self) -> None:
        self.next: dict[int, int] = {}
        self.rewinds = 0  # how many holes were found (a metric for the logs and tests)
        # partition -> (offset a seek went back to, when): until that record comes. A
        # seek can be undone by Faust's fetch loop (it sets its read offset to the stale
        # record it was delivering when the seek ran, and then drops the refetched
        # records below it), so a rewind that brings nothing is sought again (`overdue`).
        self.waiting: dict[int, tuple[int, float]] = {}
        # partition -> (the offset that must come next, since when it has been the one
        # and the log has gone past it while the agent waited): see `stalled`.
        self.behind: dict[int, tuple[int, float]] = {}

    def admit(
        self,
        records: Sequence[Positioned],
        start: Callable[[int], int | None] = lambda _p: None,
        now: float = 0.0,
    ) -> tuple[list[bool], dict[int, int]]:
        """Which records to process now, and the partitions to seek back to an offset.

        `start(partition)`: where a partition not seen since the last `forget` must
        begin (its committed offset), None if unknown. Order within a partition is kept:
        once a record of a partition is held back, so is every later one of that
        partition in this batch.
        """
        admitted: list[bool] = []
        rewind: dict[int, int] = {}
        for rec in records:
            p = rec.partition
            if p in rewind:
                admitted.append(False)
                continue
            expected = self.next.get(p)
            if expected is None:
                expected = start(p)
            if expected is not None and rec.offset > expected:
                rewind[p] = expected
                admitted.append(False)
                continue
            if p in self.waiting and rec.offset >= self.waiting[p][0]:
                del self.waiting[p]
            self.next[p] = rec.offset + 1
            admitted.append(True)
        self.rewinds += len(rewind)
        for p, offset in rewind.items():
            if self.waiting.get(p, (None, 0.0))[0] != offset:
                self.waiting[p] = (offset, now)
        return admitted, rewind

    def overdue(self, now: float, after_s: float) -> dict[int, int]:
        """Partitions sought back `after_s` ago or more whose record has not come: the
        offset to seek them to again (their clock restarts)."""
        due = {p: offset for p, (offset, at) in self.waiting.items() if now - at >= after_s}
        for p, offset in due.items():
            self.waiting[p] = (offset, now)
        return due

    def stalled(
        self,
        partitions: Iterable[int],
        start: Callable[[int], int | None],
        end: Callable[[int], int | None],
        delivered: Callable[[int], int | None],
        now: float,
        after_s: float,
        undelivered_after_s: float,
    ) -> dict[int, int]:
        """Partitions whose log ends past the offset that must come next (`end(p)`, the
        offset after its last record, None if unknown) and whose next record has not
        come for `after_s` if faust's fetch loop delivered it (`delivered(p)`, the last
        offset it handed over, None if unknown), else for `undelivered_after_s`: the
        offset to seek them back to (their clock restarts).

        Delivered but never come is a loss between faust and the agent. Not delivered is
        a partition faust has not fetched or handed over: for a while that is waiting
        its turn, but not for long while every agent waits. Call it only while every
        agent waits for records (faust's fetch loop blocks on a full queue): `busy`
        restarts every clock. A partition sought back by `admit` is `overdue`'s.
        """
        due: dict[int, int] = {}
        seen = set()
        for p in partitions:
            seen.add(p)
            expected = self.next.get(p)
            if expected is None:
                expected = start(p)
            last, handed = end(p), delivered(p)
            if expected is None or last is None or last <= expected or p in self.waiting:
                self.behind.pop(p, None)
                continue
            offset, since = self.behind.get(p, (None, now))
            if offset != expected:
                self.behind[p] = (expected, now)  # moved on since: a new clock
                continue
            lost = handed is not None and handed >= expected
            if now - since >= (after_s if lost else undelivered_after_s):
                due[p] = expected
                self.behind[p] = (expected, now)
        for p in set(self.behind) - seen:
            del self.behind[p]
        return due

    def busy(self) -> None:
        """The agent is handling records: no partition can be judged stalled meanwhile."""
        self.behind.clear()

    def undo(self, records: Sequence[Positioned]) -> None:
        """These records were admitted but not processed (their batch failed): the next
        record of their partitions must be the first of them again, so whatever comes
        after is held back and the partition rewound to it, as for a hole."""
        for rec in records:
            expected = self.next.get(rec.partition)
            if expected is not None and rec.offset < expected:
                self.next[rec.partition] = rec.offset

    def forget(self) -> None:
        """Partitions were revoked: a reassigned one restarts from its committed offset."""
        self.next.clear()
        self.waiting.clear()
        self.behind.clear()
