"""The worker's readiness for /readyz, as a snapshot the HTTP thread may read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import faust

# How often the snapshot is refreshed on the event loop.
REFRESH_S = 0.5


@dataclass
class Readiness:
    """The worker's readiness, written on the event loop and read by the /readyz thread.

    Faust's services (tables, recovery) are created lazily and bound to the loop that
    first touches them: probing them from the HTTP thread could create them there and
    stall the worker, so only this plain snapshot crosses threads.
    """

    ready: bool = False
    reason: str = "starting"

    def check(self) -> tuple[bool, str]:
        return self.ready, self.reason

    def refresh(self, app: faust.App, levels_read: bool) -> None:
        """`levels_read`: the levels topic was read up to the end offsets it had when the
        worker started (services/processor/levels.py); no tick is evaluated before."""
        if app.rebalancing:
            self.ready, self.reason = False, "rebalancing"
        elif not recovered(app):
            self.ready, self.reason = False, "recovering tables from their changelogs"
        elif not levels_read:
            self.ready, self.reason = False, "reading the levels topic up to its end"
        else:
            self.ready, self.reason = (
                True,
                "partitions assigned, tables recovered, levels read",
            )


def recovered(app: faust.App) -> bool:
    """The tables hold their recovered state (a rebalance may be starting meanwhile)."""
    return not app.in_recovery and bool(cast(Any, app.tables).recovery.completed.is_set())
