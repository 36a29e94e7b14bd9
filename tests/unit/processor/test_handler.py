"""The processor's batch handler with fakes for the producer and the table: outputs are
acknowledged before any state is written, a failed send writes nothing and the replay
sends the same outputs again, a replay after the write sends nothing, the clock is the
one given, and partitions moving empty the stages' caches.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.dead_letter import DeadLetter
from schemas.tick import Tick
from schemas.topics import DLQ_REASON_HEADER, INGESTED_AT_HEADER
from services.detection.rules import DivergenceRule, Rules
from services.processor.handler import BatchHandler, Headers, OutputTopics, OutRecord
from services.processor.outputs import Record
from services.processor.pair_stage import PairStage
from services.processor.symbol_stage import SymbolStage
from tests.unit.stage_helpers import PendingAcks

TOPICS = OutputTopics(signals="signals", pair_feed="by-pair", dlq="ticks.dlq")
RULES = Rules(divergence=(DivergenceRule(a="AAA.SH", b="BBB.HK", threshold_pp=2.0),))
T0 = datetime(2026, 2, 12, 2, 0, tzinfo=UTC)
NOW = 1_770_000_000.0


class Broker(PendingAcks):
    """A producer whose acknowledgements the test gives (or fails), and a shared log."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, ...]] = []
        self.sent: list[tuple[str, bytes | None, bytes, Headers]] = []

    async def send(self, topic: str, records: list[OutRecord]) -> asyncio.Future[None]:
        """One acknowledgement for the call, as the producer's batches give."""
        for key, value, headers in records:
            self.log.append(("send", topic))
            self.sent.append((topic, key, value, headers))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ack.add_done_callback(lambda _f: self.log.append(("ack", topic)))
        self.acks.append(ack)
        return ack


class Table:
    """The state table: a dict, its writes logged beside the broker's sends and acks."""

    def __init__(self, log: list[tuple[str, ...]]) -> None:
        self.log = log
        self.data: dict[str, dict[str, Any]] = {}

    def load(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    async def write(self, states: dict[str, dict[str, Any]]) -> None:
        self.log.append(("write", *sorted(states)))
        self.data.update(states)


def records(*ticks: tuple[str, float, int], partition: int = 0) -> list[Record]:
    """(symbol, price, second) each: a record keyed by symbol, offsets from 0."""
    out = []
    for offset, (symbol, price, second) in enumerate(ticks):
        tick = Tick(symbol=symbol, ts=T0 + timedelta(seconds=second), price=price)
        value = tick.model_dump_json().encode()
        out.append(Record(symbol.encode(), value, partition, offset, 1_000 + offset))
    return out


# Two record highs of AAA.SH (an index of the pair: each tick is also forwarded), a
# malformed record, and a late one.
BATCH = [
    *records(("AAA.SH", 10.0, 0), ("AAA.SH", 11.0, 60), ("AAA.SH", 12.0, 120)),
    Record(b"AAA.SH", b"{not json", 0, 3, None),
    Record(b"AAA.SH", Tick(symbol="AAA.SH", ts=T0, price=13.0).model_dump_json().encode(), 0, 4),
]


def sends_for(batch: list[Record]) -> list[str]:
    """The topics the handler must send to for `batch` on empty state, record by record,
    in order (one call, one acknowledgement, per topic)."""
    out = SymbolStage(RULES, "ticks").process(batch, lambda _key: None, NOW)
    assert out.signals, "the scenario has signals"
    assert out.dead, "the scenario has dead letters"
    pairs = out.pair_records()
    assert pairs, "the scenario forwards ticks to a pair"
    return (
        [TOPICS.signals] * len(out.signals)
        + [TOPICS.pair_feed] * len(pairs)
        + [TOPICS.dlq] * len(out.dead)
    )


def handler(broker: Broker, table: Table, stage: Any = None) -> BatchHandler:
    return BatchHandler(
        stage or SymbolStage(RULES, "ticks"), broker.send, table, TOPICS, now=lambda: NOW
    )


async def _until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the handler never got there")


def test_outputs_are_acknowledged_before_the_state_is_written() -> None:
    async def scenario() -> list[tuple[str, ...]]:
        broker = Broker()
        table = Table(broker.log)
        task = asyncio.create_task(handler(broker, table).handle(BATCH))
        await _until(lambda: len(broker.acks) == len(set(sends_for(BATCH))))
        # Every output is out, none acknowledged: the state must wait.
        await asyncio.sleep(0.01)
        assert not task.done()
        assert table.data == {}
        broker.acknowledge()
        await task
        return broker.log

    log = asyncio.run(scenario())
    assert [e[1] for e in log if e[0] == "send"] == sends_for(BATCH)
    assert log[-1] == ("write", "AAA.SH")
    assert log.index(("write", "AAA.SH")) > max(i for i, e in enumerate(log) if e[0] == "ack")


def test_what_goes_out_carries_keys_and_headers() -> None:
    async def scenario() -> Broker:
        broker = Broker()
        task = asyncio.create_task(handler(broker, Table(broker.log)).handle(BATCH))
        await _until(lambda: len(broker.acks) == len(set(sends_for(BATCH))))
        broker.acknowledge()
        await task
        return broker

    sent = asyncio.run(scenario()).sent
    signals = [s for s in sent if s[0] == "signals"]
    assert [(key, headers) for _t, key, _v, headers in signals] == [
        (b"AAA.SH", [(INGESTED_AT_HEADER, b"1001")]),
        (b"AAA.SH", [(INGESTED_AT_HEADER, b"1002")]),
    ]
    forwards = [s for s in sent if s[0] == "by-pair"]
    assert {key for _t, key, _v, _h in forwards} == {b"AAA.SH/BBB.HK"}
    dead = [s for s in sent if s[0] == "ticks.dlq"]
    assert [h for _t, _k, _v, h in dead] == [
        [(DLQ_REASON_HEADER, b"malformed")],
        [(DLQ_REASON_HEADER, b"late")],
    ]
    # The wall clock is the injected one.
    assert {DeadLetter.model_validate_json(v).received_at for _t, _k, v, _h in dead} == {
        datetime.fromtimestamp(NOW, UTC)
    }


def test_a_failed_send_writes_nothing_and_the_replay_sends_the_same_again() -> None:
    async def attempt(table: Table, fail: bool) -> list[tuple[str, bytes | None, bytes, Headers]]:
        broker = Broker()
        table.log = broker.log
        task = asyncio.create_task(handler(broker, table).handle(BATCH))
        await _until(lambda: len(broker.acks) == len(set(sends_for(BATCH))))
        broker.acknowledge(RuntimeError("broker gone") if fail else None)
        if fail:
            with pytest.raises(RuntimeError, match="broker gone"):
                await task
        else:
            await task
        return broker.sent

    async def scenario() -> None:
        table = Table([])
        first = await attempt(table, fail=True)
        assert table.data == {}  # nothing written: the batch is not acknowledged either
        again = await attempt(table, fail=False)
        assert again == first  # the replay re-sends identical outputs
        assert set(table.data) == {"AAA.SH"}

    asyncio.run(scenario())


def test_a_batch_replayed_after_its_state_was_written_sends_no_signal() -> None:
    async def scenario() -> list[str]:
        table = Table([])
        for _ in range(2):
            broker = Broker()
            table.log = broker.log
            task = asyncio.create_task(handler(broker, table).handle(BATCH))
            await _until(lambda b=broker: len(b.acks) > 0)
            broker.acknowledge()
            await task
        return [topic for topic, _k, _v, _h in broker.sent]

    # The second time the state holds offsets 0-2 (and 4, late): only the malformed
    # record, which no state covers, is dead-lettered again.
    assert asyncio.run(scenario()) == ["ticks.dlq"]


def test_a_shared_lock_keeps_the_second_handler_out_until_the_first_has_written() -> None:
    class Recording(SymbolStage):
        def __init__(self, name: str, log: list[tuple[str, ...]]) -> None:
            super().__init__(RULES, "ticks")
            self.name, self.log = name, log

        def process(self, batch: list[Record], load: Any, now: float) -> Any:
            self.log.append(("process", self.name))
            return super().process(batch, load, now)

    async def scenario() -> list[tuple[str, ...]]:
        broker, lock = Broker(), asyncio.Lock()
        table = Table(broker.log)
        first, second = (
            BatchHandler(Recording(n, broker.log), broker.send, table, TOPICS, lock=lock)
            for n in ("ticks", "history")
        )
        one = asyncio.create_task(first.handle(BATCH[:1]))
        two = asyncio.create_task(second.handle(records(("BBB.HK", 5.0, 0))))
        await _until(lambda: len(broker.acks) == 1)
        await asyncio.sleep(0.01)
        assert ("process", "history") not in broker.log
        broker.acknowledge()
        await _until(lambda: len(broker.acks) == 2)
        broker.acknowledge()
        await asyncio.gather(one, two)
        return broker.log

    log = asyncio.run(scenario())
    assert log.index(("write", "AAA.SH")) < log.index(("process", "history"))


def test_partitions_moving_empty_the_stages_caches() -> None:
    async def scenario() -> tuple[int, int, int]:
        stage, pairs = SymbolStage(RULES, "ticks"), PairStage(RULES)
        broker = Broker()
        symbols = handler(broker, Table(broker.log), stage)
        pair_handler = handler(broker, Table(broker.log), pairs)

        async def run(h: BatchHandler, batch: list[Record]) -> None:
            task = asyncio.create_task(h.handle(batch))
            while not task.done():
                broker.acknowledge()
                await asyncio.sleep(0)
            await task

        owned = [(f"S{i}.HK", 10.0, i) for i in range(10)]
        await run(symbols, records(*owned, ("AAA.SH", 1.0, 0), ("BBB.HK", 1.0, 1)))
        forwards = [
            Record(key, value, 0, i)
            for i, (topic, key, value, _h) in enumerate(broker.sent)
            if topic == "by-pair"
        ]
        await run(pair_handler, forwards)
        before = len(stage._cache)
        for h in (symbols, pair_handler):
            h.revoked()  # the worker lost these partitions
        await run(symbols, records(("T1.HK", 10.0, 0), ("T2.HK", 10.0, 0), partition=1))
        return before, len(stage._cache), len(pairs._cache)

    before, after, pairs_after = asyncio.run(scenario())
    assert before == 12
    assert after == 2  # only what was handled since the revocation
    assert pairs_after == 0
