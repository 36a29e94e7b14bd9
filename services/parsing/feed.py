"""Reading tick files (CSV with a header, or JSON Lines) into raw records with line numbers.

Validation is not done here: `services.parsing.validation` turns a record into a `Tick` or a
reason, so the ingestor and the backtest reject exactly the same lines.

Line numbers are physical: the first line of the file is 1 and blank lines count, so a
reported number is the one an editor shows. The same decoders serve whole files, standard
input, a followed file (fed one complete line at a time) and WebSocket messages.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

import orjson

Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")
REQUIRED_COLUMNS = ("symbol", "ts", "price")
KNOWN_COLUMNS = ("symbol", "ts", "price", "volume", "kind")
BOM = "\ufeff"


class FeedError(ValueError):
    """The file as a whole cannot be read (no header, unknown format)."""


class RawRecord(NamedTuple):
    """One input line and its fields, or why the line could not be split into fields.

    `fields` is a dict for JSON Lines (and for a CSV row too short to hold a required
    column, so validation names the missing field), and otherwise for CSV a list of the
    known columns in `Columns.known` order ("" where the file has no such column): the
    cheap shape for the million-line files a backtest reads.
    """

    line: int
    raw: str
    fields: dict[str, Any] | list[str] | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Columns:
    """What a CSV header must and may name (ticks; daily bars in `services.parsing.history`)."""

    required: tuple[str, ...]
    known: tuple[str, ...]
    what: str = "ticks"


TICK_COLUMNS = Columns(REQUIRED_COLUMNS, KNOWN_COLUMNS)
# NamedTuple's generated __new__ is a Python function; tuple.__new__ skips that frame.
_new_record = tuple.__new__


def as_mapping(fields: dict[str, Any] | list[str]) -> dict[str, Any]:
    if isinstance(fields, dict):
        return fields
    return dict(zip(KNOWN_COLUMNS, fields, strict=True))


def detect_format(path: Path | None, first_line: str, forced: Format | None = None) -> Format:
    """The format: forced, else by file suffix, else sniffed from the first non-blank line."""
    if forced is not None:
        return forced
    suffix = path.suffix.lower() if path is not None else ""
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if first_line.lstrip(BOM).lstrip().startswith("{") else "csv"


# -- decoders: one line in, one record (or nothing, for a blank line) out ---------------


class JsonlDecoder:
    """One JSON object per line."""

    __slots__ = ()

    def decode(self, lineno: int, line: str) -> RawRecord | None:
        text = line.rstrip("\r\n")
        if not text.strip():
            return None
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            obj = _with_non_finite(text)
            if obj is None:
                return RawRecord(lineno, text, None, f"not valid JSON: {exc}")
        if not isinstance(obj, dict):
            return RawRecord(lineno, text, None, "a JSON line must be an object")
        return RawRecord(lineno, text, obj)


def _with_non_finite(text: str) -> Any:
    """The line parsed with NaN/Infinity allowed, or None if that is not what broke it.

    orjson refuses the tokens outright; parsing them lets validation say which field holds
    one and why it is refused ("price: Input should be a finite number"), not "not JSON".
    """
    if "NaN" not in text and "Infinity" not in text:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if isinstance(obj, dict) and any(
        isinstance(v, float) and not math.isfinite(v) for v in obj.values()
    ):
        return obj
    return None


class CsvDecoder:
    """Rows under a header. Built from the header line (its physical line number aside)."""

    __slots__ = ("columns", "header", "header_line", "positions", "same_order", "width")

    def __init__(self, header_line: str, columns: Columns = TICK_COLUMNS) -> None:
        self.header_line = header_line.lstrip(BOM)
        header = [h.strip().lower() for h in next(csv.reader([self.header_line]))]
        missing = [c for c in columns.required if c not in header]
        if missing:
            raise FeedError(
                f"CSV header must name at least {','.join(columns.required)}; "
                f"missing {','.join(missing)}"
            )
        self.columns = columns
        self.header = header
        self.width = len(header)
        self.positions = [header.index(name) if name in header else -1 for name in columns.known]
        self.same_order = header == list(columns.known)

    def decode(self, lineno: int, line: str) -> RawRecord | None:
        text = line.rstrip("\r\n")
        if not text:
            return None
        cells = text.split(",") if '"' not in text else next(csv.reader([text]))
        width = self.width
        if len(cells) != width:
            if not text.strip():
                return None
            return self._ragged(lineno, text, cells)
        if not self.same_order:
            cells = [cells[i] if i >= 0 else "" for i in self.positions]
        return _new_record(RawRecord, (lineno, text, cells, None))

    def _ragged(self, lineno: int, text: str, cells: list[str]) -> RawRecord:
        """A row with more cells than the header is malformed; a short one lacks its tail."""
        n = len(cells)
        if n > self.width:
            return RawRecord(
                lineno, text, None, f"{n} cells, but the header names {self.width} columns"
            )
        known = self.columns.known
        present = {
            name: cells[i] for name, i in zip(known, self.positions, strict=True) if 0 <= i < n
        }
        if any(name not in present for name in self.columns.required):
            # A mapping without the required column: validation reports it as missing.
            return RawRecord(lineno, text, present, None)
        # Only optional columns are absent: they take their defaults, as empty cells do.
        return RawRecord(lineno, text, [present.get(name, "") for name in known], None)


Decoder = JsonlDecoder | CsvDecoder


class LineReader:
    """Feeds physical lines to the right decoder: sniffs the format, takes the CSV header.

    `feed(line)` takes the next physical line (blank ones too, so numbers stay physical)
    and returns its record, or None for a blank line or the header.
    """

    def __init__(
        self, path: Path | None = None, fmt: Format | None = None, columns: Columns = TICK_COLUMNS
    ) -> None:
        self.path = path
        self.forced = fmt
        self.columns = columns
        self.lineno = 0
        self.decoder: Decoder | None = None

    @property
    def format(self) -> Format | None:
        if self.decoder is None:
            return None
        return "csv" if isinstance(self.decoder, CsvDecoder) else "jsonl"

    def feed(self, line: str) -> RawRecord | None:
        self.lineno += 1
        if self.lineno == 1 and line.startswith(BOM):
            line = line[1:]
        if self.decoder is None:
            if not line.strip():
                return None
            if detect_format(self.path, line, self.forced) == "csv":
                self.decoder = CsvDecoder(line, self.columns)
                return None
            self.decoder = JsonlDecoder()
        return self.decoder.decode(self.lineno, line)


def read_records(
    path: str | Path, fmt: Format | None = None, columns: Columns = TICK_COLUMNS
) -> Iterator[RawRecord]:
    p = Path(path)
    with p.open("r", encoding="utf-8", newline="") as fh:
        yield from read_stream(fh, p, fmt, columns)


def read_stream(
    fh: IO[str] | Iterable[str],
    path: Path | None = None,
    fmt: Format | None = None,
    columns: Columns = TICK_COLUMNS,
) -> Iterator[RawRecord]:
    """Every record of a stream of lines (a file, or standard input), in order."""
    reader = LineReader(path, fmt, columns)
    lines = iter(fh)
    feed = reader.feed
    for line in lines:
        record = feed(line)
        if record is not None:
            yield record
        if reader.decoder is not None:
            break
    decode = reader.decoder.decode if reader.decoder is not None else None
    if decode is None:
        return
    # The hot loop: the decoder is known, so skip the reader's per-line bookkeeping.
    lineno = reader.lineno
    for line in lines:
        lineno += 1
        record = decode(lineno, line)
        if record is not None:
            yield record
    reader.lineno = lineno


def stdin_text() -> IO[str]:
    """Standard input as UTF-8 text with line endings kept, whatever the locale says."""
    return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
