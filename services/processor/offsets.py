"""The offset a source partition may commit: never past a record that was not processed.

The contract: a committed offset covers only records whose outputs and state records
the broker has acknowledged. A kill -9 at any moment then restarts a partition at or
before the first record whose state is missing, never after it, so no tick is skipped
and the stages skip what state already holds (docs/reliability.md, G1).

Three rules make it so, each narrower than faust's own rule (commit the end of the first
run of consecutive acked offsets):

- Only the acks of messages an agent declared processed count. A message a stream
  skipped (an older generation's, or one taken while the flow was suspended) is settled
  for a stop's wait but never committed: it is fetched again.
- A jump in fetched offsets counts for nothing. faust records one as a gap of
  compacted records that it later treats as acked; our sources are neither compacted
  nor transactional, so a jump is a hole in delivery that `Continuity` rewinds.
- A commit covers only the acked run that starts exactly at the committed offset.

A hole in the acks therefore holds the partition's commit back until its records are
refetched and processed: a delay, never a loss. `HeldCommits` says so in the log when
the delay lasts.

This module holds the rules as plain Python; `faust_compat/consumer.py` binds them into
faust's consumer.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Callable

log = logging.getLogger("marketsignal.processor")

HELD_WARN_S = 30.0


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


class HeldCommits:
    """Logs, once per held offset, a partition whose commit stays held back.

    A commit held back for long means a record that is never processed: the worker
    goes on, but a restart would replay everything after it.
    """

    def __init__(
        self, warn_after_s: float = HELD_WARN_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.warn_after_s = warn_after_s
        self.clock = clock
        # (topic, partition) -> (committed offset, since when; inf once warned)
        self.since: dict[tuple[str, int], tuple[int, float]] = {}

    def note(self, tp: tuple[str, int], committed: int, first_acked: int) -> None:
        """The partition's commit is held at `committed`; `first_acked` is processed."""
        now = self.clock()
        since = self.since.get(tp)
        if since is None or since[0] != committed:
            self.since[tp] = (committed, now)
        elif now - since[1] >= self.warn_after_s:
            self.since[tp] = (committed, float("inf"))
            log.warning(
                "%s[%d]: offset %d not processed for %.0f s; later ones are (from %d): "
                "commit held back",
                tp[0],
                tp[1],
                committed,
                self.warn_after_s,
                first_acked,
            )
