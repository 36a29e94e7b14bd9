"""Each agent's source partitions without holes: the faust side of `Continuity`.

`Continuity` (continuity.py) decides, record by record, what may be processed and
where a partition must be sought back to; this asks faust's consumer where each
partition starts, performs the seeks, and repeats a seek whose record has not come.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import TP

from services.processor.continuity import Continuity
from services.processor.faust_compat.consumer import committed_offsets

log = logging.getLogger("marketsignal.processor")

# How long a partition sought back to a missing record may wait for it before the seek
# is repeated (services/processor/continuity.py).
REWIND_RETRY_S = 2.0


class Rewinds:
    """One `Continuity` per source topic (each agent sees its own topic's partitions)."""

    def __init__(self, app: faust.App, topics: Sequence[str]) -> None:
        self.app = app
        self.continuity = {topic: Continuity() for topic in topics}

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
        # No committed offset (Faust also stores 0 as none): the partition is read from
        # its log start, so that is where it must begin; otherwise the first record
        # would be taken for the start, and a hole before it would go unnoticed.
        fresh = {
            TP(topic, e.message.partition)
            for e in events
            if e.message.partition not in continuity.next
            and committed.get(TP(topic, e.message.partition)) is None
        }
        earliest: dict[TP, int] = {}
        if fresh:
            try:
                earliest = dict(await app.consumer.earliest_offsets(*fresh))
            except Exception as exc:  # the broker may be restarting: the first record starts it
                log.warning("%s: log start offsets unknown (%r)", topic, exc)

        def start(partition: int) -> int | None:
            tp = TP(topic, partition)
            offset = committed.get(tp)
            if offset is None:
                offset = earliest.get(tp)
            return int(offset) if offset is not None else None

        admitted, rewind = continuity.admit([e.message for e in events], start, time.monotonic())
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
        now = time.monotonic()
        for topic, continuity in self.continuity.items():
            for partition, offset in continuity.overdue(now, REWIND_RETRY_S).items():
                log.warning(
                    "%s[%d]: record %d not fetched since the rewind, seeking back again",
                    topic,
                    partition,
                    offset,
                )
                await self._seek_back(topic, partition, offset)

    async def _seek_back(self, topic: str, partition: int, offset: int) -> None:
        try:
            await self.app.consumer.seek(TP(topic, partition), offset)
        except Exception as exc:  # e.g. a stale record of a partition revoked meanwhile
            log.warning("%s[%d]: seek failed (%r); records held back", topic, partition, exc)
