"""A dependency's outage in the logs: one line when it goes away, one when it is back.

A retry loop calls `failed` on every failed attempt and `ok` after each success. Only
the first failure of an outage is logged (with its error), and its end (with how long it
lasted and how many attempts failed): a broker or Redis away for a minute is two lines,
not one per retry. The counts stay exact for the metrics the callers keep themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class Outage:
    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.what = what
        self.level = level
        self.clock = clock
        self.since: float | None = None
        self.failures = 0
        self.last_error = ""

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException | str) -> None:
        self.last_error = str(exc)
        if self.since is None:
            self.since = self.clock()
            self.failures = 1
            self.log.log(
                self.level,
                "%s unavailable: %s; retrying with backoff, quiet until it is back",
                self.what,
                self.last_error,
            )
        else:
            self.failures += 1

    def ok(self) -> None:
        if self.since is None:
            return
        self.log.warning(
            "%s back after %.1fs (%d failed attempt%s; last error: %s)",
            self.what,
            self.clock() - self.since,
            self.failures,
            "" if self.failures == 1 else "s",
            self.last_error,
        )
        self.since = None
        self.failures = 0
