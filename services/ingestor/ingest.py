"""The replay loop: a feed file, screened and paced, into a publisher."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from schemas.dead_letter import DeadLetter
from schemas.tick import Tick
from services.feed import read_records
from services.ingestor.pacing import Pacer
from services.ingestor.screening import Accepted, Screener

# A dead letter must fit in one Kafka record (1 MiB by default) whatever the input line.
MAX_RAW_CHARS = 100_000


class Sink(Protocol):
    def tick(self, tick: Tick) -> None: ...

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


def ingest_file(path: Path, screener: Screener, pacer: Pacer, sink: Sink) -> IngestSummary:
    """Screen and send every line of `path`. The caller flushes the sink afterwards."""
    summary = IngestSummary()
    started = time.perf_counter()
    try:
        for record in read_records(path):
            summary.read += 1
            outcome = screener.screen(record)
            if isinstance(outcome, Accepted):
                pacer.wait(outcome.ts_us)
                sink.tick(outcome.tick)
                summary.published += 1
            else:
                sink.dead_letter(bounded(outcome))
                summary.dead[outcome.reason] += 1
    finally:
        summary.seconds = time.perf_counter() - started
    return summary
