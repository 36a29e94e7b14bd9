"""Each agent's source partitions without holes: the faust side of `Continuity`.

`Continuity` (continuity.py) decides, record by record, what may be processed and
where a partition must be sought back to; this asks faust's consumer where each
partition starts and ends, performs the seeks, repeats a seek whose record has not come,
and seeks back a partition that stopped short of its end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import faust
from faust.types import TP

from services.processor.continuity import Continuity
from services.processor.faust_compat.consumer import (
    committed_offsets,
    flow_state,
    group_committed,
    read_offsets,
)
from services.processor.readiness import recovered

log = logging.getLogger("marketsignal.processor")

# How long a partition sought back to a missing record may wait for it before the seek
# is repeated (services/processor/continuity.py).
REWIND_RETRY_S = 2.0
# How long a partition's log may go past the record that must come next, faust having
# delivered it, with every agent waiting and nothing of that partition coming, before it
# is sought back to that record (`Continuity.stalled`). Checked every REWIND_RETRY_S.
STALL_S = 4.0
# The same for a partition whose next record faust has not even delivered: not fetched
# for that long while every agent waits, it is stuck (faust's fetch loop left it out).
STALL_UNDELIVERED_S = 10.0
# The longest a question to the broker (committed or end offsets) may hold an agent or
# the check: unanswered, the partition is judged on what is known.
BROKER_ASK_S = 5.0


class Rewinds:
    """One `Continuity` per source topic (each agent sees its own topic's partitions)."""

    def __init__(
        self, app: faust.App, topics: Sequence[str], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.clock = clock
        self.continuity = {topic: Continuity() for topic in topics}
        # Topics whose agent is handling a batch (or waiting to start one): see `stalled`.
        self.handling: set[str] = set()
        self.stalls = 0  # partitions sought back by `stalled` (a count for the logs)

    @contextmanager
    def handling_batch(self, topic: str) -> Iterator[None]:
        """Around an agent's batch: no partition is judged stalled meanwhile."""
        self.handling.add(topic)
        try:
            yield
        finally:
            self.handling.discard(topic)

    def forget(self) -> None:
        """Partitions moved: positions are learnt again from the new assignment."""
        for continuity in self.continuity.values():
            continuity.forget()

    async def without_gaps(self, events: Sequence[Any], topic: str) -> Sequence[Any]:
        """The events that may be processed now; after a hole, the partition is sought
        back to it and the events past it are left unacked (fetched again)."""
        continuity = self.continuity[topic]
        app = self.app
        # Where Faust sought each partition to after its assignment.
        committed = committed_offsets(app)
        # No committed offset known to Faust: either none is committed (Faust also stores
        # 0 as none), and the partition is read from its log start, so that is where it
        # must begin (otherwise the first record would be taken for the start, and a
        # hole before it would go unnoticed); or Faust's recovery is still seeking the
        # partitions while records already flow, and has not stored it yet: the group's
        # is asked of the broker, or every restart would replay such a partition from
        # its log start.
        fresh = {
            TP(topic, e.message.partition)
            for e in events
            if e.message.partition not in continuity.next
            and committed.get(TP(topic, e.message.partition)) is None
        }
        known: dict[TP, int | None] = {}
        earliest: dict[TP, int] = {}
        if fresh:
            try:
                known = await asyncio.wait_for(group_committed(app, fresh), BROKER_ASK_S)
                unknown = [tp for tp in fresh if not known.get(tp)]
                if unknown:
                    earliest = dict(await app.consumer.earliest_offsets(*unknown))
            except Exception as exc:  # the broker may be restarting: the first record starts it
                log.warning("%s: where partitions start is unknown (%r)", topic, exc)

        def start(partition: int) -> int | None:
            tp = TP(topic, partition)
            offset = committed.get(tp) or known.get(tp)
            if offset is None:
                offset = earliest.get(tp)
            return int(offset) if offset is not None else None

        admitted, rewind = continuity.admit([e.message for e in events], start, self.clock())
        for event, ok in zip(events, admitted, strict=True):
            if not ok:
                # Never committed: fetched again after the seek below.
                event.message.acked = True
        for partition, offset in rewind.items():
            log.warning(
                "%s[%d]: records missing from %d on, seeking back", topic, partition, offset
            )
            await self._seek_back(topic, partition, offset)
        return [e for e, ok in zip(events, admitted, strict=True) if ok]

    async def retry(self) -> None:
        """Seek again where a rewind's first record has not come: the seek was undone
        (Continuity's `waiting`), and at the end of a partition no later record would
        show the hole."""
        now = self.clock()
        for topic, continuity in self.continuity.items():
            for partition, offset in continuity.overdue(now, REWIND_RETRY_S).items():
                log.warning(
                    "%s[%d]: record %d not fetched since the rewind, seeking back again",
                    topic,
                    partition,
                    offset,
                )
                await self._seek_back(topic, partition, offset)

    async def stalled(self) -> None:
        """Seek back a partition whose log goes past the record that must come next, whose
        records faust delivered, and of which nothing comes while every agent waits
        (`Continuity.stalled`): records lost at a partition's end, which no later record
        reveals."""
        app = self.app
        # Any agent handling a batch may hold faust's fetch loop, which blocks on a full
        # stream queue, so that no agent receives anything meanwhile: judge none.
        if self.handling or app.rebalancing or not recovered(app):
            for continuity in self.continuity.values():
                continuity.busy()
            return
        now = self.clock()
        committed = committed_offsets(app)
        read = read_offsets(app)
        assigned = app.consumer.assignment()
        for topic, continuity in self.continuity.items():
            partitions = [tp.partition for tp in assigned if tp.topic == topic]

            def start(partition: int, topic: str = topic) -> int | None:
                offset = committed.get(TP(topic, partition))
                return int(offset) if offset is not None else None

            ends = await self._ends([TP(topic, p) for p in partitions])

            def end(partition: int, topic: str = topic, ends: dict[TP, int] = ends) -> int | None:
                return ends.get(TP(topic, partition))

            def delivered(partition: int, topic: str = topic) -> int | None:
                offset = read.get(TP(topic, partition))
                return int(offset) if offset is not None else None

            for partition, offset in continuity.stalled(
                partitions, start, end, delivered, now, STALL_S, STALL_UNDELIVERED_S
            ).items():
                tp = TP(topic, partition)
                flow = flow_state(app, tp)
                self.stalls += 1
                log.warning(
                    "%s[%d]: record %d not received while every agent waited, though "
                    "faust's fetch loop is at %s (%s) and the partition ends at %s; "
                    "seeking back (%d such seeks since start)",
                    topic,
                    partition,
                    offset,
                    delivered(partition),
                    flow,
                    end(partition),
                    self.stalls,
                )
                await self._seek_back(topic, partition, offset)
                if flow in ("left out", "buffered"):
                    # Every agent waits with an empty queue: nothing holds it back now.
                    app.consumer.resume_partitions([tp])

    async def _ends(self, tps: list[TP]) -> dict[TP, int]:
        """Each partition's end offset: the high watermark of its last fetch, or the
        broker's for one not fetched since the assignment (a partition faust never asks
        for has none)."""
        ends: dict[TP, int] = {}
        unknown: list[TP] = []
        for tp in tps:
            try:
                highwater = self.app.consumer.highwater(tp)
            except Exception:  # revoked since `assignment()`: judged next time
                continue
            if highwater is None:
                unknown.append(tp)
            else:
                ends[tp] = int(highwater)
        if unknown:
            try:
                asked = await asyncio.wait_for(self.app.consumer.highwaters(*unknown), BROKER_ASK_S)
            except Exception:  # the broker may be away: judged next time
                return ends
            ends.update({tp: int(offset) for tp, offset in asked.items() if offset is not None})
        return ends

    async def _seek_back(self, topic: str, partition: int, offset: int) -> None:
        try:
            await self.app.consumer.seek(TP(topic, partition), offset)
        except Exception as exc:  # e.g. a stale record of a partition revoked meanwhile
            log.warning("%s[%d]: seek failed (%r); records held back", topic, partition, exc)
