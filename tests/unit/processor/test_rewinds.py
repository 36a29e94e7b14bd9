"""`Rewinds` on a stand-in for faust's app: which partitions it seeks back, and when."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, NamedTuple

from faust.types import TP

from services.processor.rewinds import STALL_S, STALL_UNDELIVERED_S, Rewinds


class Rec(NamedTuple):
    partition: int
    offset: int


class Consumer:
    """The names `Rewinds` reads of faust's consumer."""

    def __init__(
        self, ends: dict[TP, int], committed: dict[TP, int | None], read: dict[TP, int | None]
    ) -> None:
        self.ends = ends
        self._committed_offset = committed
        self._read_offset = read
        self.fetched = set(ends)  # partitions with a high watermark from a fetch
        self._active = set(ends)
        self._paused_partitions: set[TP] = set()
        self._buffered_partitions: set[TP] = set()
        self.seeks: list[tuple[TP, int]] = []
        self.asked: list[TP] = []

    def assignment(self) -> set[TP]:
        return set(self.ends)

    def highwater(self, tp: TP) -> int | None:
        return self.ends[tp] if tp in self.fetched else None

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        self.asked.extend(tps)
        return {tp: self.ends[tp] for tp in tps}

    def _get_active_partitions(self) -> set[TP]:
        return self._active

    def resume_partitions(self, tps: list[TP]) -> None:
        self._active.update(tps)

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def app_with(consumer: Consumer) -> Any:
    recovery = SimpleNamespace(completed=asyncio.Event())
    recovery.completed.set()
    return SimpleNamespace(
        consumer=consumer,
        rebalancing=False,
        in_recovery=False,
        tables=SimpleNamespace(recovery=recovery),
    )


def test_a_partition_stopped_short_of_its_end_is_sought_back_once_its_agent_waits() -> None:
    clock = [100.0]
    ticks = [TP("ticks", p) for p in range(3)]
    # 0: processed to its end; 1: committed 451 of 503, delivered by faust up to 502
    # but none of it came since the restart; 2: at its end by its committed offset;
    # 3: behind, but faust has not delivered its records yet (waiting its turn).
    consumer = Consumer(
        ends={ticks[0]: 40, ticks[1]: 503, ticks[2]: 7, TP("ticks", 3): 90},
        committed={ticks[0]: 10, ticks[1]: 451, ticks[2]: 7, TP("ticks", 3): 60},
        read={ticks[0]: 39, ticks[1]: 502, ticks[2]: 6, TP("ticks", 3): 59},
    )
    app = app_with(consumer)
    rewinds = Rewinds(app, ["ticks"], clock=lambda: clock[0])
    rewinds.continuity["ticks"].admit([Rec(0, n) for n in range(10, 40)], now=100.0)

    async def check_at(t: float) -> list[tuple[TP, int]]:
        clock[0] = t
        consumer.seeks.clear()
        await rewinds.stalled()
        return list(consumer.seeks)

    async def scenario() -> None:
        assert await check_at(100.0) == []
        # The agent busy with a batch for a while (e.g. held for the levels): no judgement,
        # and the clock starts again after it.
        with rewinds.handling_batch("history"):  # any agent's batch may hold faust's loop
            assert await check_at(100.0 + STALL_S) == []
        assert await check_at(101.0 + STALL_S) == []
        assert await check_at(101.0 + 2 * STALL_S) == [(ticks[1], 451)]
        assert rewinds.stalls == 1
        # A rebalance: nothing is judged until the tables are recovered again.
        app.rebalancing = True
        assert await check_at(200.0) == []
        app.rebalancing = False
        assert await check_at(200.0 + STALL_S) == []
        assert await check_at(200.0 + 2 * STALL_S) == [(ticks[1], 451)]
        # 3, never handed over by faust, is given the longer wait (its clock: 200 + 4);
        # 1 is sought back again meanwhile, its record still not come.
        assert (TP("ticks", 3), 60) in await check_at(200.0 + STALL_S + STALL_UNDELIVERED_S)

    asyncio.run(scenario())


def test_a_partition_faust_left_out_of_its_fetches_is_sought_back_and_asked_for_again() -> None:
    clock = [0.0]
    tp = TP("ticks", 5)
    # Never fetched since the restart: no high watermark of its own, faust's read offset
    # where its recovery sought it (the committed offset).
    consumer = Consumer(ends={tp: 226}, committed={tp: 181}, read={tp: 181})
    consumer.fetched.clear()
    consumer._active.clear()
    rewinds = Rewinds(app_with(consumer), ["ticks"], clock=lambda: clock[0])

    async def scenario() -> None:
        await rewinds.stalled()
        assert consumer.asked == [tp]  # the broker's end offset, as no fetch gave one
        clock[0] = STALL_S
        await rewinds.stalled()
        assert consumer.seeks == [(tp, 181)]
        assert tp in consumer._active

    asyncio.run(scenario())
