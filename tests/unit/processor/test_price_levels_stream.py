"""Price levels in the symbol stage: the backtest's firings, in its order, with and
without tick bundles, across restarts and crashes half-way through a state write; p kept
in the symbol's state; late ticks leave p alone; the levels topic's records applied.

No broker: the stage runs over an in-memory table as the tick agent runs it over its
changelog-backed one (tests/unit/stage_helpers.py).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.bar import Bar
from schemas.level import Level
from schemas.signals import LevelDirection, PriceLevel
from schemas.tick import Tick
from schemas.tick_bundle import partition_of
from services.detection.engine import Engine
from services.detection.price_level import ArmedLevel, LevelBook
from services.detection.record_high import Late
from services.detection.rules import Rules
from services.processor.history_stage import HistoryStage
from services.processor.levels import LevelFeed, apply_record
from services.processor.outputs import Record
from services.processor.readiness import Readiness
from services.processor.symbol_stage import SymbolStage
from services.processor.symbol_state import SymbolState
from tests.unit.stage_helpers import plain

RULES = Rules.from_mapping({"divergence": []})
SUB = "0123456789abcdef"
SYMBOLS = ("2513.HK", "0700.HK", "600519.SH")
T0 = datetime(2026, 2, 13, 1, 30, tzinfo=UTC)


def walk(n: int, seed: int) -> list[Tick]:
    """A random walk over three symbols around 100, crossing the levels below often."""
    rng = random.Random(seed)
    prices = dict.fromkeys(SYMBOLS, 100.0)
    t = T0
    out = []
    for _ in range(n):
        symbol = rng.choice(SYMBOLS)
        prices[symbol] = max(1.0, prices[symbol] + rng.choice((-3, -2, -1, 0, 1, 2, 3)))
        t += timedelta(seconds=rng.randint(1, 30))
        out.append(Tick(symbol=symbol, ts=t, price=prices[symbol]))
    return out


def levels_for(seed: int) -> list[ArmedLevel]:
    rng = random.Random(seed)
    out = []
    for i in range(12):
        symbol = SYMBOLS[i % 2]  # 600519.SH has none: its ticks only keep p
        direction: LevelDirection = "above" if rng.random() < 0.5 else "below"
        out.append(ArmedLevel(f"L{i:02d}", symbol, direction, float(rng.randint(94, 106)), SUB))
    return out


def backtest(ticks: list[Tick], levels: list[ArmedLevel]) -> list[str]:
    engine = Engine(RULES, LevelBook(levels))
    got = []
    for tick in ticks:
        result = engine.process(tick)
        assert not isinstance(result, Late)
        got += [s.model_dump_json() for s in result]
    return got


def single_records(ticks: list[Tick]) -> list[Record]:
    return [
        Record(
            t.symbol.encode(),
            t.model_dump_json().encode(),
            partition_of(t.symbol, 3),
            i,
        )
        for i, t in enumerate(ticks)
    ]


def bundle_records(ticks: list[Tick], rng: random.Random) -> list[Record]:
    """Ticks grouped by partition into bundles of 1-6, in arrival order per partition."""
    out: list[Record] = []
    offset = 0
    pending: dict[int, list[Tick]] = {}
    for tick in ticks:
        p = partition_of(tick.symbol, 3)
        pending.setdefault(p, []).append(tick)
        if len(pending[p]) >= rng.randint(1, 6):
            items = [orjson.loads(t.model_dump_json()) for t in pending.pop(p)]
            out.append(Record(None, orjson.dumps(items), p, offset))
            offset += 1
    for p, rest in pending.items():
        items = [orjson.loads(t.model_dump_json()) for t in rest]
        out.append(Record(None, orjson.dumps(items), p, offset))
        offset += 1
    return out


class Worker:
    """The symbol stage over a table; a restart reads the table back as JSON."""

    def __init__(self, levels: list[ArmedLevel]) -> None:
        self.levels = levels
        self.table: dict[str, Any] = {}
        self.signals: list[str] = []
        self.restart()

    def restart(self) -> None:
        self.table = plain(self.table)
        # A restarted worker reads the whole levels topic again: the same book.
        self.stage = SymbolStage(RULES, "ticks", 3, LevelBook(list(self.levels)))

    def batch(self, records: list[Record], keep: float = 1.0, rng: Any = None) -> None:
        out = self.stage.process(records, self.table.get, 0.0)
        self.signals += [s.model_dump_json() for s in out.signals]
        if keep >= 1.0:
            self.table.update(out.states)
            return
        # Died during the state write: some states landed; the batch comes again.
        for key, state in out.states.items():
            if rng.random() < keep:
                self.table[key] = state
        self.restart()
        self.batch(records)


def distinct(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))  # the alerter drops a repeated alert id


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), bundles=st.booleans(), crash=st.booleans())
def test_the_stage_fires_what_the_backtest_fires(seed: int, bundles: bool, crash: bool) -> None:
    rng = random.Random(seed)
    ticks = walk(300, seed)
    levels = levels_for(seed)
    expected = backtest(ticks, levels)
    assert any('"price_level"' in s for s in expected)  # the walk does cross them
    records = bundle_records(ticks, rng) if bundles else single_records(ticks)
    worker = Worker(levels)
    i = 0
    while i < len(records):
        n = rng.randint(1, 25)
        batch = records[i : i + n]
        worker.batch(batch, keep=rng.random() if crash and rng.random() < 0.3 else 1.0, rng=rng)
        if rng.random() < 0.2:
            worker.restart()
        i += n
    # Per symbol in the backtest's order, each once (a replay's repeat is the same alert).
    got = distinct(worker.signals)
    for symbol in SYMBOLS:
        assert [s for s in got if f'"{symbol}"' in s] == [s for s in expected if f'"{symbol}"' in s]
    assert sorted(got) == sorted(expected)


def test_a_level_fires_after_the_symbols_other_signals() -> None:
    """The backtest's order: record high (and day moves) first, then the levels."""
    worker = Worker([ArmedLevel("L1", "2513.HK", "above", 105.0, SUB)])
    ticks = [
        Tick(symbol="2513.HK", ts=T0, price=100.0),
        Tick(symbol="2513.HK", ts=T0 + timedelta(seconds=1), price=110.0),
    ]
    worker.batch(single_records(ticks))
    kinds = [orjson.loads(s)["kind"] for s in worker.signals]
    assert kinds == ["record_high", "price_level"]
    assert worker.signals == backtest(ticks, worker.levels)


def test_p_lives_in_the_symbols_state_and_survives_a_restart() -> None:
    """Each tick in its own batch and a restart between: p comes from the table."""
    worker = Worker([ArmedLevel("L1", "2513.HK", "above", 105.0, SUB)])
    prices = [100.0, 104.0, 106.0, 104.0, 107.0]
    ticks = [
        Tick(symbol="2513.HK", ts=T0 + timedelta(seconds=n), price=p) for n, p in enumerate(prices)
    ]
    for record in single_records(ticks):
        worker.batch([record])
        worker.restart()
        assert worker.table["2513.HK"]["last"] == orjson.loads(record.value)["price"]
    fired = [orjson.loads(s) for s in worker.signals if '"price_level"' in s]
    assert [(f["previous_price"], f["price"]) for f in fired] == [(104.0, 106.0), (104.0, 107.0)]


def test_a_late_tick_is_not_p() -> None:
    worker = Worker([ArmedLevel("L1", "2513.HK", "above", 105.0, SUB)])
    late_ts = T0 - timedelta(days=2)  # past the allowed lateness: dead-lettered
    ticks = [
        Tick(symbol="2513.HK", ts=T0, price=100.0),
        Tick(symbol="2513.HK", ts=late_ts, price=110.0),
        Tick(symbol="2513.HK", ts=T0 + timedelta(seconds=2), price=106.0),
    ]
    out = worker.stage.process(single_records(ticks), worker.table.get, 0.0)
    assert [d.reason for d in out.dead] == ["late"]
    fired = [s for s in out.signals if isinstance(s, PriceLevel)]
    # From 100 (the last accepted), not from the late 110 (which would not cross).
    assert [(s.previous_price, s.price) for s in fired] == [(100.0, 106.0)]
    assert out.states["2513.HK"]["last"] == 106.0


def test_a_level_armed_later_uses_the_price_from_before_it() -> None:
    """p is the symbol's previous accepted price whether or not the level existed then."""
    book = LevelBook()
    stage = SymbolStage(RULES, "ticks", 3, book)
    table: dict[str, Any] = {}
    first, second = single_records(
        [
            Tick(symbol="0700.HK", ts=T0, price=290.0),
            Tick(symbol="0700.HK", ts=T0 + timedelta(seconds=1), price=310.0),
        ]
    )
    out = stage.process([first], table.get, 0.0)
    table.update(out.states)
    assert out.signals == []
    assert table["0700.HK"]["last"] == 290.0
    book.arm(ArmedLevel("L9", "0700.HK", "above", 300.0, SUB))
    out = stage.process([second], table.get, 0.0)
    fired = [s for s in out.signals if isinstance(s, PriceLevel)]
    assert [(s.level_id, s.previous_price, s.price) for s in fired] == [("L9", 290.0, 310.0)]
    table.update(out.states)
    book.disarm("L9")
    # A disarmed level fires no more: down through 300 and back up.
    later = single_records(
        [
            Tick(symbol="0700.HK", ts=T0 + timedelta(seconds=n), price=p)
            for n, p in ((2, 290.0), (3, 310.0))
        ]
    )
    later = [r._replace(offset=r.offset + 2) for r in later]
    out = stage.process(later, table.get, 0.0)
    assert [s for s in out.signals if isinstance(s, PriceLevel)] == []
    assert out.states["0700.HK"]["last"] == 310.0


def test_a_state_from_before_p_crosses_nothing_on_its_first_tick() -> None:
    book = LevelBook([ArmedLevel("L1", "2513.HK", "above", 105.0, SUB)])
    stage = SymbolStage(RULES, "ticks", 3, book)
    table: dict[str, Any] = {}
    a, b, c = single_records(
        [
            Tick(symbol="2513.HK", ts=T0 + timedelta(seconds=n), price=p)
            for n, p in enumerate((100.0, 106.0, 104.0))
        ]
    )
    table.update(stage.process([a], table.get, 0.0).states)
    del table["2513.HK"]["last"]  # as written before p was kept
    out = stage.process([b], table.get, 0.0)
    assert [s.kind for s in out.signals] == ["record_high"]
    table.update(out.states)
    assert table["2513.HK"]["last"] == 106.0
    assert SymbolState.from_json("2513.HK", table["2513.HK"], stage.trackers).last_price == 106.0
    assert stage.process([c], table.get, 0.0).signals == []


def test_symbols_without_levels_keep_p_and_fire_nothing() -> None:
    worker = Worker([])
    ticks = walk(200, 3)
    worker.batch(single_records(ticks))
    assert not any('"price_level"' in s for s in worker.signals)
    for symbol in SYMBOLS:
        assert worker.table[symbol]["last"] == [t.price for t in ticks if t.symbol == symbol][-1]


def level(level_id: str, price: float, symbol: str = "2513.HK") -> bytes:
    spec = {"level_id": level_id, "symbol": symbol, "above": price, "subscription_id": SUB}
    return Level.model_validate(spec).model_dump_json().encode()


def test_the_levels_topics_records_arm_rearm_and_disarm() -> None:
    feed = LevelFeed("127.0.0.1:1", "levels")
    feed.apply(
        [
            (b"L1", level("L1", 400.0)),
            (b"L2", level("L2", 500.0)),
            (b"L1", level("L1", 450.0)),  # changed: re-armed at its new price
            (b"L2", None),  # deleted
            (b"L3", None),  # a tombstone for a level never seen: nothing to do
        ]
    )
    assert [(lv.level_id, lv.price) for lv in feed.book.levels()] == [("L1", 450.0)]
    assert (feed.stats.armed, feed.stats.disarmed, feed.stats.bad) == (3, 2, 0)
    assert not feed.ready.is_set()  # only the topic read up to its end sets it


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (None, level("L1", 400.0)),
        (b"", None),
        (b"\xff\xfe", None),
        (b"L1", b"not json"),
        (b"L1", b'{"level_id": "L1", "symbol": "2513.HK"}'),
        (b"L2", level("L1", 400.0)),  # the key and the level disagree
    ],
)
def test_a_bad_record_on_the_levels_topic_is_skipped(key: bytes | None, value: bytes) -> None:
    book = LevelBook([ArmedLevel("L1", "2513.HK", "above", 300.0, SUB)])
    assert apply_record(book, key, value) == "bad"
    assert [(lv.level_id, lv.price) for lv in book.levels()] == [("L1", 300.0)]


def test_readyz_waits_for_the_levels_topic() -> None:
    """Recovered and assigned, but the levels not yet read: not ready."""
    recovery = SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True))
    app: Any = SimpleNamespace(
        rebalancing=False, in_recovery=False, tables=SimpleNamespace(recovery=recovery)
    )
    probe = Readiness()
    probe.refresh(app, levels_read=False)
    assert probe.check() == (False, "reading the levels topic up to its end")
    probe.refresh(app, levels_read=True)
    assert probe.check()[0] is True


def test_a_bar_merged_by_the_history_stage_keeps_p() -> None:
    """The history stage rewrites the symbol's state: p stays as the ticks left it."""
    worker = Worker([ArmedLevel("L1", "2513.HK", "above", 105.0, SUB)])
    worker.batch(single_records([Tick(symbol="2513.HK", ts=T0, price=100.0)]))
    bar = Bar(symbol="2513.HK", date=date(2026, 2, 10), high=98.0, close=97.0)
    history = HistoryStage(RULES, "history")
    out = history.process(
        [Record(b"2513.HK", bar.model_dump_json().encode(), 0, 0)], worker.table.get, 0.0
    )
    worker.table.update(out.states)
    assert worker.table["2513.HK"]["last"] == 100.0
    worker.restart()
    worker.batch(
        [
            Record(
                b"2513.HK",
                Tick(symbol="2513.HK", ts=T0 + timedelta(seconds=1), price=106.0)
                .model_dump_json()
                .encode(),
                partition_of("2513.HK", 3),
                1,
            )
        ]
    )
    fired = [orjson.loads(s) for s in worker.signals if '"price_level"' in s]
    assert [(f["previous_price"], f["price"]) for f in fired] == [(100.0, 106.0)]
