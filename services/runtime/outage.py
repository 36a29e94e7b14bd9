"""A dependency's outage in the logs: one line when it goes away, one when it is back.

A retry loop calls `failed` on every failed attempt and `ok` after each success. Only
the first failure of an outage is logged (with its error), a summary every SUMMARY_S
while it lasts (how long, how many attempts failed), and its end: a broker or Redis
away for a minute is four lines, not one per retry. The counts stay exact for the
metrics the callers keep themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

# While a dependency stays away, a line this often says it still is: someone reading the
# log at minute 5 of an outage sees it is not over, without a line per retry.
SUMMARY_S = 30.0


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
        self.said = 0.0  # when the last line about this outage was written
        self.failures = 0
        self.last_error = ""

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException | str) -> None:
        self.last_error = str(exc)
        now = self.clock()
        if self.since is None:
            self.since = self.said = now
            self.failures = 1
            self.log.log(
                self.level,
                "%s unavailable: %s; retrying with backoff, a summary every %gs until it is back",
                self.what,
                self.last_error,
                SUMMARY_S,
            )
            return
        self.failures += 1
        if now - self.said >= SUMMARY_S:
            self.said = now
            self.log.log(
                self.level,
                "%s still unavailable after %.0fs (%d failed attempts; last error: %s)",
                self.what,
                now - self.since,
                self.failures,
                self.last_error,
            )

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
