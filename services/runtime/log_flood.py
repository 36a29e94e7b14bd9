"""The client libraries' chatter during an outage, counted instead of printed line by line.

In a 21 s broker restart the processor wrote 4,277 lines, nearly all from aiokafka and
faust retrying ('Unable connect to node with id 1', 'Unable to update metadata', a
failed commit, a failed heartbeat), and the alerter 272 from kafka-python: the one line
that mattered was lost among them. `RepeatFilter` lets the first line of each message
(a library's logger and its message template, so 'node 1' and 'node 2' are one message)
through in every SUMMARY_S window and counts the repeats; the next one that gets
through after the window says how many were held back. Every distinct message is still
seen once, start-up's included. Our own loggers (`marketsignal.*`) are left alone: they
report an outage through `services/runtime/outage.py`.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.runtime.outage import SUMMARY_S

# The clients' and the engine's loggers (first part of the name).
LIBRARIES = frozenset(("aiokafka", "kafka", "faust", "mode", "redis"))
_PASSED = "_repeat_filter_passed"


@dataclass
class _Seen:
    since: float  # start of its window: when a line of it last got through
    held: int = 0


class RepeatFilter(logging.Filter):
    def __init__(
        self, window_s: float = SUMMARY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}
        # faust's consumer thread logs too.
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # One record meets the filter once per handler: decide once.
        passed = getattr(record, _PASSED, None)
        if passed is not None:
            return bool(passed)
        family = record.name.partition(".")[0]
        if family not in LIBRARIES:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            passed = seen is None or now - seen.since >= self.window_s
            if passed:
                self._seen[key] = _Seen(now)
            else:
                assert seen is not None
                seen.held += 1
        setattr(record, _PASSED, passed)
        if passed and seen is not None and seen.held:
            # Formatted outside the lock: an argument's __str__ may log.
            record.msg = (
                f"{record.getMessage()} [and {seen.held} more like this in the last "
                f"{now - seen.since:.0f}s, not shown]"
            )
            record.args = ()  # formatted already (mode's formatter wraps a None)
        return passed

    def held_back(self) -> list[tuple[str, str, int]]:
        """(logger, message template, lines held) of the current windows."""
        with self._lock:
            return [(name, msg, s.held) for (name, _, msg), s in self._seen.items() if s.held]


def install(root: logging.Logger | None = None) -> RepeatFilter:
    """Add a `RepeatFilter` to every handler of the root logger (configure logging first);
    at exit, one line sums up what the last windows held back."""
    root = logging.getLogger() if root is None else root
    repeat = RepeatFilter()
    for handler in root.handlers:
        handler.addFilter(repeat)

    def summary() -> None:
        held = repeat.held_back()
        if held:
            total = sum(n for _, _, n in held)
            most = sorted(held, key=lambda h: -h[2])[:3]
            logging.getLogger("marketsignal").warning(
                "%d repeated library log lines not shown at the end, most: %s",
                total,
                "; ".join(f"{name}: {msg!r} x{n}" for name, msg, n in most),
            )

    atexit.register(summary)
    return repeat
