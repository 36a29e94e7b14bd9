"""`ingest_records` with a checkpoint: when the source's position is saved, relative to
what was sent. A followed file relies on it to resume without loss or resending."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.dead_letter import DeadLetter
from schemas.zones import ExchangeZones
from services.ingestor.ingest import ingest_records
from services.ingestor.pacing import Pacer
from services.ingestor.screening import Accepted, Screener
from services.parsing.feed import RawRecord

NOW = datetime(2026, 2, 13, tzinfo=UTC)


class Log:
    """A sink and a checkpoint writing, in order, what reached them."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def tick(self, tick: Accepted) -> None:
        self.events.append(f"tick {tick.symbol}")

    def dead_letter(self, dead: DeadLetter) -> None:
        self.events.append(f"dead {dead.line}")

    def checkpoint(self) -> None:
        self.events.append("checkpoint")


def line(n: int, symbol: str) -> RawRecord:
    return RawRecord(
        n,
        f"{symbol},2026-02-13T02:00:0{n}Z,1.5",
        [symbol, f"2026-02-13T02:00:0{n}Z", "1.5", "", ""],
    )


def run(records: list[RawRecord | None], every_s: float) -> Log:
    log = Log()
    screener = Screener(ExchangeZones(), 5.0, "feed.csv", lambda: NOW)
    summary = ingest_records(
        records, screener, Pacer(), log, checkpoint=log.checkpoint, checkpoint_every_s=every_s
    )
    assert summary.read == sum(r is not None for r in records)
    return log


def test_a_pause_in_the_source_checkpoints_what_was_sent_once() -> None:
    log = run([line(1, "A"), line(2, "B"), None, None, line(3, "A"), None], every_s=3600)
    assert log.events == ["tick A", "tick B", "checkpoint", "tick A", "checkpoint"]


def test_the_end_of_the_source_checkpoints_what_is_left() -> None:
    assert run([line(1, "A")], every_s=3600).events == ["tick A", "checkpoint"]
    assert run([None, None], every_s=3600).events == []


def test_when_due_the_record_is_sent_before_the_checkpoint() -> None:
    log = run([line(1, "A"), RawRecord(2, "x", None, "bad"), None], every_s=0)
    assert log.events == ["tick A", "checkpoint", "dead 2", "checkpoint"]
