"""Reading a history file (daily bars, CSV or JSON Lines) into bars or reasons, by line.

The backtest (`--history`) and `marketsignal history load` read bars through this one
function, so both reject the same lines for the same reasons: an invalid bar, or a
second bar for the same (symbol, date), reported with its physical line number.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from schemas.bar import Bar
from services.parsing.feed import Columns, Format, RawRecord, read_records, read_stream
from services.parsing.validation import describe

BAR_COLUMNS = Columns(
    required=("symbol", "date", "high", "close"),
    known=("symbol", "date", "high", "close", "open", "low", "volume"),
    what="bars",
)
_OPTIONAL = frozenset(("open", "low", "volume"))


@dataclass(frozen=True, slots=True)
class BadBar:
    line: int
    raw: str
    field: str | None
    reason: str

    def render(self, source: str) -> str:
        return f"{source}:{self.line}: bad bar: {self.reason}"


def _fields(record: RawRecord) -> dict[str, Any]:
    fields = record.fields
    assert fields is not None
    if isinstance(fields, dict):
        return fields
    # CSV: an empty optional cell means "not given", as for ticks.
    return {
        name: cell
        for name, cell in zip(BAR_COLUMNS.known, fields, strict=True)
        if not (name in _OPTIONAL and not cell.strip())
    }


def screen_bars(records: Iterable[RawRecord]) -> Iterator[tuple[int, Bar] | BadBar]:
    """(line, bar) for each valid first bar of its (symbol, date); `BadBar` otherwise."""
    seen: dict[tuple[str, date], int] = {}
    for record in records:
        if record.fields is None:
            yield BadBar(record.line, record.raw, None, record.error or "unreadable line")
            continue
        try:
            bar = Bar.model_validate(_fields(record))
        except ValidationError as exc:
            bad = describe(exc)
            yield BadBar(record.line, record.raw, bad.field, bad.detail)
            continue
        key = (bar.symbol, bar.date)
        first = seen.get(key)
        if first is not None:
            yield BadBar(
                record.line,
                record.raw,
                "date",
                f"a second bar for {bar.symbol} on {bar.date.isoformat()} (first on line {first})",
            )
            continue
        seen[key] = record.line
        yield record.line, bar


def read_bars(path: Path, fmt: Format | None = None) -> Iterator[tuple[int, Bar] | BadBar]:
    return screen_bars(read_records(path, fmt, BAR_COLUMNS))


def read_bars_stream(fh: IO[str], fmt: Format | None = None) -> Iterator[tuple[int, Bar] | BadBar]:
    return screen_bars(read_stream(fh, None, fmt, BAR_COLUMNS))
