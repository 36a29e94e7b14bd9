"""Reading tick files (CSV with a header, or JSON Lines) into raw records with line numbers.

Validation is not done here: `services.validation` turns a record into a `Tick` or a
reason, so the ingestor and the backtest reject exactly the same lines.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

import orjson

Format = Literal["csv", "jsonl"]
REQUIRED_COLUMNS = ("symbol", "ts", "price")
KNOWN_COLUMNS = ("symbol", "ts", "price", "volume", "kind")


class FeedError(ValueError):
    """The file as a whole cannot be read (no header, unknown format)."""


class RawRecord(NamedTuple):
    """One input line and its fields, or why the line could not be split into fields.

    `fields` is a dict for JSON Lines, and for CSV a list of the five known columns in
    KNOWN_COLUMNS order ("" where the file has no such column): the cheap shape for the
    million-line files a backtest reads.
    """

    line: int
    raw: str
    fields: dict[str, Any] | list[str] | None
    error: str | None = None


def as_mapping(fields: dict[str, Any] | list[str]) -> dict[str, Any]:
    if isinstance(fields, dict):
        return fields
    return dict(zip(KNOWN_COLUMNS, fields, strict=True))


def detect_format(path: Path, first_line: str) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def read_records(path: str | Path) -> Iterator[RawRecord]:
    p = Path(path)
    with p.open("r", encoding="utf-8", newline="") as fh:
        yield from read_stream(fh, p)


def read_stream(fh: IO[str], path: Path) -> Iterator[RawRecord]:
    first = fh.readline()
    while first and not first.strip():
        first = fh.readline()
    if not first:
        return
    fmt = detect_format(path, first)
    if fmt == "jsonl":
        yield from _jsonl(first, fh)
    else:
        yield from _csv(first, fh)


def _jsonl(first: str, fh: IO[str]) -> Iterator[RawRecord]:
    # Line numbers count from the first non-blank line's position; blank lines are skipped.
    lineno = 0
    for line in _chain(first, fh):
        lineno += 1
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield RawRecord(lineno, text, None, f"not valid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            yield RawRecord(lineno, text, None, "a JSON line must be an object")
            continue
        yield RawRecord(lineno, text, obj)


def _csv(header_line: str, fh: IO[str]) -> Iterator[RawRecord]:
    header = [h.strip().lower() for h in next(csv.reader([header_line]))]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FeedError(
            f"CSV header must name at least symbol,ts,price; missing {','.join(missing)}"
        )
    width = len(header)
    positions = [header.index(name) if name in header else -1 for name in KNOWN_COLUMNS]
    same_order = header == list(KNOWN_COLUMNS)
    new = tuple.__new__  # skips NamedTuple's Python-level __new__: once per line
    record = RawRecord
    lineno = 1
    for line in fh:
        lineno += 1
        text = line.rstrip("\r\n")
        if not text:
            continue
        cells = text.split(",") if '"' not in text else next(csv.reader([text]))
        if len(cells) != width:
            if not text.strip():
                continue
            yield record(lineno, text, None, f"expected {width} columns, found {len(cells)}")
            continue
        if not same_order:
            cells = [cells[i] if i >= 0 else "" for i in positions]
        yield new(record, (lineno, text, cells, None))


def _chain(first: str, fh: IO[str]) -> Iterator[str]:
    yield first
    yield from fh
