"""Faust's consumer with an offset commit that never passes an unprocessed record.

Faust commits, per source partition, the end of the first run of consecutive acked
offsets. Two of its rules let that run start past records nobody processed:

- A jump in fetched offsets is taken for a compacted range or transaction markers and
  recorded as a "gap" (`_add_gap`) that `_new_offset` later counts as acked, together
  with the record after the jump (the interval is closed at its end). Our sources are
  neither compacted nor transactional: a jump is a hole in delivery (records fetched and
  then dropped by `Consumer.getmany` when a partition is paused for table recovery, the
  flow stops or the generation changes). `Continuity` holds the records after a hole
  back and seeks the partition back to it, but the gap stayed recorded: as soon as the
  refetched records were acked past its start, the next commit covered the whole hole,
  processed or not. A kill -9 or a stop killed half-way then left the committed offset
  ahead of the tables: the ticks in between were never evaluated (missing alerts, all
  consecutive) and later ticks were judged against the older state (extra alerts).
- The check for a run that does not start at the committed offset lets a run starting
  one past it through (`min(acked) - committed > 1`), so the record at the committed
  offset itself could be skipped.

Here a jump records nothing, and a commit covers only the acked run that starts exactly
at the committed offset. An offset is acked only after its batch's outputs and table
writes are acknowledged by Kafka (`app.py`), so a committed offset never passes state.
A hole in the acks holds the partition's commit back until the records are refetched
and processed (Continuity's seek-back), which is a delay, never a loss.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from typing import Any

from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP

log = logging.getLogger("marketsignal.processor")

HELD_WARN_S = 30.0


class ContiguousCommitConsumer(Consumer):
    """aiokafka-driven faust consumer; only the commit offset rules differ."""

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # `_drain_messages` calls this with the offset after the last one read and the
        # first one read after the jump; that record is still delivered.
        log.warning(
            "%s[%d]: fetched offsets jump to %d (records from %d not delivered); "
            "not counted as processed",
            tp.topic,
            tp.partition,
            offset_to,
            offset_from,
        )

    _held_since: dict[TP, tuple[int, float]] | None = None

    def _new_offset(self, tp: TP) -> int | None:
        committed = self._committed_offset[tp]
        offset = commit_offset(self._acked[tp], self._acked_index[tp], committed)
        if offset is None and self._acked[tp] and committed is not None:
            self._note_held(tp, committed)
        return offset

    def _note_held(self, tp: TP, committed: int) -> None:
        # A commit held back for long means a record that is never processed: say so once.
        held = self._held_since if self._held_since is not None else {}
        self._held_since = held
        now = time.monotonic()
        since = held.get(tp)
        if since is None or since[0] != committed:
            held[tp] = (committed, now)
        elif now - since[1] >= HELD_WARN_S:
            held[tp] = (committed, float("inf"))
            log.warning(
                "%s[%d]: offset %d not processed for %.0f s; later ones are (from %d): "
                "commit held back",
                tp.topic,
                tp.partition,
                committed,
                HELD_WARN_S,
                self._acked[tp][0],
            )


def commit_offset(acked: list[int], index: set[int], committed: int | None) -> int | None:
    """The offset to commit for a partition, or None; takes the run it covers out of
    `acked` (acked offsets, any order) and `index` (the same offsets, faust's set).

    Only the acked run that starts at `committed` counts. `committed` None means faust
    knows no committed offset (0 is stored as None, and a rebalance forgets it until the
    partition is assigned again); the run then starts at the lowest acked offset, where
    this worker's processing of the partition started (`Continuity` admits a partition's
    records only in order from there).
    """
    if not acked:
        return None
    acked.sort()
    if committed is not None:
        # Acks of records a seek or a commit has already put behind the committed
        # offset (a replay, a batch finished during a rebalance) say nothing new.
        stale = bisect_left(acked, committed)
        if stale:
            index.difference_update(acked[:stale])
            del acked[:stale]
        if not acked or acked[0] != committed:
            return None  # the record at the committed offset is not processed yet
    end = acked[0]
    run = 1
    while run < len(acked) and acked[run] == end + 1:
        end += 1
        run += 1
    index.difference_update(acked[:run])
    del acked[:run]
    return end + 1


def install(app: Any) -> None:
    """Make `app` create its consumer from `ContiguousCommitConsumer` (before first use)."""
    app.transport.Consumer = ContiguousCommitConsumer
