"""The worker's periodic jobs: rewinds retried, held pair ticks released, the start-up
heap frozen once, readiness refreshed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import faust

from schemas.pair_feed import Heartbeat
from services.detection.rules import Rules
from services.processor.readiness import REFRESH_S, Readiness, recovered
from services.processor.rewinds import REWIND_RETRY_S, Rewinds
from services.runtime.heap import freeze_heap

log = logging.getLogger("marketsignal.processor")


def heartbeat_interval(rules: Rules) -> float:
    """A quarter of the shortest `max_wait_s`, within 0.1-1 s: held ticks are released
    at most that much later than their wait allows."""
    waits = [rule.max_wait_s for rule in rules.divergence]
    waits += [rule.max_wait_s for rule in rules.ah]
    waits = waits or [2.0]
    return min(max(min(waits) / 4, 0.1), 1.0)


def add_timers(
    app: faust.App,
    *,
    rewinds: Rewinds,
    by_pair: faust.TopicT,
    pair_subjects: Callable[[], Iterable[str]],
    heartbeat_s: float,
    readiness: Readiness | None,
    levels_ready: Callable[[], bool],
) -> None:
    @app.timer(interval=REWIND_RETRY_S)  # type: ignore[untyped-decorator]
    async def retry_rewinds() -> None:
        await rewinds.retry()
        await rewinds.stalled()

    heartbeat = Heartbeat().model_dump_json().encode()

    @app.timer(interval=heartbeat_s, on_leader=True)  # type: ignore[untyped-decorator]
    async def release_held_ticks() -> None:
        # Through the topic, not a direct table poke: the worker owning each pair's
        # partition handles it, in order with that pair's ticks.
        for key in pair_subjects():
            await by_pair.send(key=key.encode(), value=heartbeat)

    frozen = False

    @app.timer(interval=REFRESH_S)  # type: ignore[untyped-decorator]
    async def freeze_after_recovery() -> None:
        # Once, when the tables are recovered and the levels read: the bulk of what the
        # worker will ever hold is alive by then (services/runtime/heap.py), 100,000
        # levels included, which every full collection would otherwise walk.
        nonlocal frozen
        if not frozen and not app.rebalancing and recovered(app) and levels_ready():
            frozen = True
            log.info("%d start-up objects frozen out of garbage collection", freeze_heap())

    if readiness is not None:
        probe = readiness

        @app.timer(interval=REFRESH_S)  # type: ignore[untyped-decorator]
        async def refresh_readiness() -> None:
            probe.refresh(app, levels_ready())
