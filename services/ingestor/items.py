"""One item of a pulled or pushed source (a polled row, a Futu ticker row) into the sink:
a tick's fields validated by the screener like a file line, a `Rejected` as a dead letter
quoting what the source sent (`raw`) with its reason. `line` is the source's count of
messages (a poll's number, a push's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.ingestor.adapters.base import Item, Mapped, Rejected
from services.ingestor.ingest import IngestSummary, Sink, deliver, handle_record
from services.ingestor.pacing import Pacer
from services.ingestor.screening import Screener
from services.parsing.feed import RawRecord


def handle_item(
    item: Item,
    raw: str,
    line: int,
    screener: Screener,
    pacer: Pacer,
    sink: Sink,
    summary: IngestSummary,
) -> None:
    if isinstance(item, Rejected):
        summary.read += 1
        dead = screener.rejected(RawRecord(line, raw, None), item.field, item.detail)
        deliver(dead, pacer, sink, summary)
        return
    fields: Mapping[str, Any] = item.fields if isinstance(item, Mapped) else item
    handle_record(RawRecord(line, raw, dict(fields)), screener, pacer, sink, summary)
