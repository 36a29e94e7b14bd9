"""The replay loop: a feed file, screened and paced, into a publisher."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from schemas.dead_letter import DeadLetter
from services.ingestor.pacing import Pacer
from services.ingestor.screening import Accepted, Screener
from services.parsing.feed import RawRecord

# A dead letter must fit in one Kafka record (1 MiB by default) whatever the input line.
MAX_RAW_CHARS = 100_000


class Sink(Protocol):
    def tick(self, tick: Accepted) -> None: ...

    def dead_letter(self, dead: DeadLetter) -> None: ...


@dataclass
class IngestSummary:
    read: int = 0
    published: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    failed: int = 0

    def render(self) -> str:
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.dead.items())) or "none"
        failed = f", {self.failed} NOT DELIVERED" if self.failed else ""
        return (
            f"ingest: {self.read} read, {self.published} published, "
            f"{sum(self.dead.values())} dead-lettered ({reasons}){failed}; "
            f"{self.seconds:.2f}s ({rate:,.0f} ticks/s)"
        )


def bounded(dead: DeadLetter) -> DeadLetter:
    if len(dead.raw) <= MAX_RAW_CHARS:
        return dead
    return dead.model_copy(
        update={
            "raw": dead.raw[:MAX_RAW_CHARS],
            "detail": f"{dead.detail} (raw line truncated from {len(dead.raw)} characters)",
        }
    )


def ingest_records(
    records: Iterable[RawRecord | None],
    screener: Screener,
    pacer: Pacer,
    sink: Sink,
    *,
    checkpoint: Callable[[], None] | None = None,
    checkpoint_every_s: float = 1.0,
    summary: IngestSummary | None = None,
) -> IngestSummary:
    """Screen and send records from any source (a file, standard input, a followed file).

    A None from the source means "nothing new for now": a moment to `checkpoint` (flush
    and remember how far the source was delivered), as is every `checkpoint_every_s`.
    """
    summary = summary if summary is not None else IngestSummary()
    started = time.perf_counter()
    dirty = False
    last_checkpoint = time.monotonic()
    try:
        if checkpoint is None:
            _replay(records, screener, pacer, sink, summary)
            return summary
        for record in records:
            if record is None:
                if dirty:
                    checkpoint()
                    dirty, last_checkpoint = False, time.monotonic()
                continue
            due = time.monotonic() - last_checkpoint >= checkpoint_every_s
            # This record is already counted in the source's position: send it first,
            # so the checkpoint's flush covers it.
            handle_record(record, screener, pacer, sink, summary)
            dirty = True
            if due:
                checkpoint()
                dirty, last_checkpoint = False, time.monotonic()
        if dirty:
            checkpoint()
    finally:
        summary.seconds = time.perf_counter() - started
    return summary


def _replay(
    records: Iterable[RawRecord | None],
    screener: Screener,
    pacer: Pacer,
    sink: Sink,
    summary: IngestSummary,
) -> None:
    """`handle_record` for each record, with the unpaced valid tick (a replay's common
    case, once a line) handled inline."""
    screen, tick, paced = screener.screen, sink.tick, pacer.paced
    read = published = 0
    try:
        for record in records:
            if record is None:
                continue
            read += 1
            outcome = screen(record)
            if paced or not isinstance(outcome, Accepted):
                deliver(outcome, pacer, sink, summary)
            else:
                tick(outcome)
                published += 1
    finally:
        summary.read += read
        summary.published += published


def handle_record(
    record: RawRecord, screener: Screener, pacer: Pacer, sink: Sink, summary: IngestSummary
) -> None:
    summary.read += 1
    deliver(screener.screen(record), pacer, sink, summary)


def deliver(
    outcome: Accepted | DeadLetter, pacer: Pacer, sink: Sink, summary: IngestSummary
) -> None:
    if isinstance(outcome, Accepted):
        pacer.wait(outcome.ts_us)
        sink.tick(outcome)
        summary.published += 1
    else:
        sink.dead_letter(bounded(outcome))
        summary.dead[outcome.reason] += 1
