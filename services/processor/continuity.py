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
This is plain Python; `rewinds.py` asks faust where partitions start and seeks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
