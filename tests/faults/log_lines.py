"""What the services wrote to their logs during a fault: issue 24's "a fault must not
flood the logs". A mark is every log's size at a moment; `since` reads the log records
each log gained after it (a record: a line starting with its timestamp, with the lines
that continue it, a traceback or one of faust's tables), and `shapes` groups them with
their numbers blanked, so that 'retry 1 of 5' and 'retry 2 of 5' count as one message
repeated."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

Mark = dict[Path, int]

_NUMBERS = re.compile(r"\d+(?:\.\d+)?")
# Our services' format (2026-12-06 22:53:00,029 ...) and faust's ([2026-12-06 ...]).
_RECORD_START = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d")


def mark(logs: Path) -> Mark:
    return {p: p.stat().st_size for p in sorted(logs.glob("*.log"))}


def since(logs: Path, at: Mark) -> dict[str, list[str]]:
    """Each log's records written after `at` (a log new since then: all of them), each
    as its first line."""
    out: dict[str, list[str]] = {}
    for path in sorted(logs.glob("*.log")):
        with path.open("rb") as fh:
            fh.seek(at.get(path, 0))
            lines = fh.read().decode(errors="replace").splitlines()
        out[path.stem] = [line for line in lines if _RECORD_START.match(line)]
    return out


def shapes(lines: list[str]) -> Counter[str]:
    """The lines with their numbers blanked, counted (a timestamp's digits too)."""
    return Counter(_NUMBERS.sub("#", line)[:160] for line in lines)
