"""The processor's internal re-keyed topic: accepted ticks by pair or listing, index daily
bars (history), and heartbeats.

A tick can belong to several divergence pairs and A/H listings, which `group_by` cannot
express (one key per event), so the symbol stage sends one record per pair (keyed by the
pair name) and per listing (keyed `ah:A/H`), as group_by itself would to its
repartition topic.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PAIR_FEED_TOPIC = "marketsignal.ticks.by_pair"


class PairTick(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    type: Literal["tick"] = "tick"
    symbol: str
    ts_us: int
    price: Annotated[float, Field(gt=0)]
    # Source partition and offset in `ticks`: a replay after a crash re-sends the same
    # records, and the pair stage drops what it has already applied.
    src_partition: int
    src_offset: int
    # Index of the tick inside its `ticks` record (a bundle); 0 for a single tick.
    src_index: int = 0

    def as_tuple(self) -> tuple[str, int, float, int, int, int]:
        """The fields in declaration order: the shape of the pair stage's fast parse."""
        return (
            self.symbol,
            self.ts_us,
            self.price,
            self.src_partition,
            self.src_offset,
            self.src_index,
        )


class PairBar(BaseModel):
    """A daily bar of an index (history): a base for the pair's returns, never evaluated."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    type: Literal["bar"] = "bar"
    symbol: str
    day: int  # proleptic Gregorian ordinal of the bar's exchange-local date
    close: Annotated[float, Field(gt=0)]


class Heartbeat(BaseModel):
    """Sent by the leader on a timer so held ticks are released after `max_wait_s`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["heartbeat"] = "heartbeat"


# A record on the re-keyed topic is one message or a bundle (a JSON array) of them, all
# for the record's key: the symbol stage sends one record per pair per batch.
PairFeedMessage = Annotated[PairTick | PairBar | Heartbeat, Field(discriminator="type")]
