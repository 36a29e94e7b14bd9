"""Reading the counts out of a command's summary line, so tests compare numbers, not text.

`ingest: 11 read, 5 published, 6 dead-lettered (late=1, malformed=5); 0.12s (...)` gives
{"read": 11, "published": 5, "dead-lettered": 6, "late": 1, "malformed": 5}; the first
figure of a name wins, so a trailing rate ("(1,234 ticks/s)") never overrides a count.
"""

from __future__ import annotations

import re

_COUNT = re.compile(r"(?<![\w.,])(\d+) ([a-z][a-z-]*)(?![\w/-])")
_NAMED = re.compile(r"([a-z_]+)=(\d+)")


def summary_counts(text: str, prefix: str) -> dict[str, int]:
    """The counts of the last line of `text` that starts with `prefix` (fails if none)."""
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting with {prefix!r} in:\n{text}"
    counts: dict[str, int] = {}
    for number, name in _COUNT.findall(lines[-1]):
        counts.setdefault(name, int(number))
    for name, number in _NAMED.findall(lines[-1]):
        counts.setdefault(name, int(number))
    return counts
