"""`marketsignal backtest`: signals as JSON lines on stdout, diagnostics on stderr."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, TextIO

from schemas.tick_codec import ParsedTick
from services.backtest.chart_data import ChartData
from services.detection.engine import Engine
from services.detection.price_level import LevelBook
from services.detection.record_high import Late
from services.detection.rules import Rules
from services.parsing.feed import Format, read_records, read_stream
from services.parsing.history import BadBar, read_bars
from services.parsing.validation import Invalid, TickParser


class StrictStop(Exception):  # noqa: N818 - a stop, not an error in the program
    """--strict met a bad line."""


@dataclass
class Summary:
    lines: int = 0
    accepted: int = 0
    malformed: int = 0
    late: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    # --history: valid bars read, bad ones (invalid or a second for a date), and valid
    # ones ignored because ticks cover their date; None without --history
    bars: int | None = None
    bad_bars: int = 0
    overlap: int = 0

    def render(self) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(self.signals.items())) or "none"
        history = (
            ""
            if self.bars is None
            else f"history: {self.bars} bars, {self.bad_bars} bad, {self.overlap} overlap; "
        )
        return (
            f"summary: {history}{self.lines} ticks read, {self.accepted} accepted, "
            f"{self.malformed} malformed, {self.late} late; signals: {kinds}; "
            f"{self.seconds:.2f}s ({rate:,.0f} ticks/s)"
        )


class _Progress:
    """A one-line progress meter on a terminal; silent otherwise."""

    def __init__(self, stream: TextIO, total_bytes: int, enabled: bool) -> None:
        self.stream = stream
        self.total = max(total_bytes, 1)
        self.enabled = enabled
        self.next_at = 0.0

    def show(self, done_bytes: int, lines: int) -> None:
        now = time.monotonic()
        if not self.enabled or now < self.next_at:
            return
        self.next_at = now + 0.2
        frac = min(done_bytes / self.total, 1.0)
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r[{bar:<30}] {frac * 100:5.1f}% {lines:,} lines")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


def load_history(
    engine: Engine,
    path: Path,
    summary: Summary,
    err: TextIO,
    *,
    strict: bool,
    charts: ChartData | None = None,
) -> None:
    """Apply a history file's bars before any tick; bad bars reported by line."""
    summary.bars = 0
    for item in read_bars(path):
        if isinstance(item, BadBar):
            summary.bad_bars += 1
            err.write(item.render(str(path)) + "\n")
            if strict:
                raise StrictStop(f"{path}:{item.line}: bad bar")
            continue
        _, bar = item
        summary.bars += 1
        engine.add_bar(bar.symbol, bar.date.toordinal(), bar.high, bar.close, bar.volume)
        if charts is not None:
            charts.add_history(bar.symbol, [(bar.date, bar.high, bar.close)])


def run_backtest(
    path: Path,
    rules: Rules,
    out: BinaryIO,
    err: TextIO,
    *,
    strict: bool = False,
    progress: bool | None = None,
    history: Path | None = None,
    stream: IO[str] | None = None,
    fmt: Format | None = None,
    charts: ChartData | None = None,
    levels: LevelBook | None = None,
) -> Summary:
    """Run the detectors over `path` (or `stream`, named `path` in diagnostics), after
    the bars of `history` if given. Raises StrictStop on the first bad line if `strict`.

    With `charts`, also gathers what `services.backtest.charts` draws. `levels`: price
    levels armed before the first tick (`--levels`).
    """
    engine = Engine(rules, levels)
    if charts is not None:
        charts.attach(engine)
    parser = TickParser(engine.zones)
    allowed = rules.ticks.allowed_lateness_s
    summary = Summary()
    if history is not None:
        load_history(engine, history, summary, err, strict=strict, charts=charts)
    size = os.path.getsize(path) if stream is None else 0
    meter = _Progress(
        err, size, stream is None and (err.isatty() if progress is None else progress)
    )
    started = time.perf_counter()
    write = out.write
    done_bytes = 0

    def reject(line: int, reason: str, detail: str) -> None:
        err.write(f"{path}:{line}: {reason}: {detail}\n")
        if strict:
            raise StrictStop(f"{path}:{line}: {reason}")

    lines = accepted = malformed = late = 0
    parse = parser.parse
    fast = parser.fast_cells
    process = engine.process_values
    counts = summary.signals
    try:
        records = read_records(path, fmt) if stream is None else read_stream(stream, None, fmt)
        for record in records:
            lines += 1
            if meter.enabled:
                done_bytes += len(record.raw) + 1
                meter.show(done_bytes, lines)
            fields = record.fields
            if fields is None:
                malformed += 1
                reject(record.line, "malformed", record.error or "unreadable line")
                continue
            # The fast path inline: this loop is the backtest's whole cost.
            tick: ParsedTick | Invalid | None = fast(*fields) if type(fields) is list else None
            if tick is None:
                tick = parse(fields)
            if type(tick) is Invalid:
                malformed += 1
                reject(record.line, "malformed", tick.detail)
                continue
            assert type(tick) is ParsedTick
            result = process(tick.symbol, tick.ts_us, tick.price, None, tick.volume, tick.kind)
            if type(result) is Late:
                late += 1
                reject(record.line, "late", result.detail(allowed))
                continue
            accepted += 1
            assert type(result) is list
            if charts is not None:
                charts.tick(tick.symbol, tick.ts_us, tick.price)
                charts.day_move(tick.symbol, tick.ts_us, tick.price)
                for signal in result:
                    charts.signal(signal)
            for signal in result:
                counts[signal.kind] += 1
                write(signal.model_dump_json().encode() + b"\n")
        for signal in engine.flush():
            if charts is not None:
                charts.signal(signal)
            counts[signal.kind] += 1
            write(signal.model_dump_json().encode() + b"\n")
    finally:
        meter.done()
        summary.seconds = time.perf_counter() - started
        summary.lines, summary.accepted = lines, accepted
        summary.malformed, summary.late = malformed, late
        summary.overlap = engine.overlapping_bars()
    return summary
