"""The ingestor's Bundler: when a bundle closes (count, bytes, time), and what it holds."""

from __future__ import annotations

import json

from schemas.tick import Tick
from services.ingestor.bundling import Bundler
from services.ingestor.publish import linger_ms
from services.runtime.settings import Settings
from tests.unit.stage_helpers import make_ticks


class TestBundler:
    def test_closes_on_count_bytes_and_time_and_keeps_order(self) -> None:
        b = Bundler(window_s=0.005, max_ticks=3, max_bytes=40)
        assert b.add(0, "A", b"1" * 5, 0.0, 1) == []
        assert b.add(1, "B", b"2" * 5, 0.001, 2) == []
        assert b.add(0, "A", b"3" * 5, 0.002, 3) == []
        [full] = b.add(0, "C", b"4" * 5, 0.003, 4)  # the third tick: full
        assert (full.partition, full.values, full.first_ms) == (
            0,
            [b"11111", b"33333", b"44444"],
            1,
        )
        assert (full.key(), full.value()) == (None, b"[11111,33333,44444]")
        assert b.next_due() == 0.001 + 0.005
        assert b.due(0.0059) == []
        [timed] = b.due(0.006)
        assert (timed.values, timed.value(), timed.key()) == ([b"22222"], b"22222", b"B")
        assert b.next_due() is None
        # Bytes: a tick that would overflow the bundle closes it first.
        assert b.add(2, "D", b"x" * 30, 1.0, 5) == []
        [before] = b.add(2, "D", b"y" * 30, 1.0, 6)
        assert (before.values, before.key()) == ([b"x" * 30], b"D")
        assert [x.values for x in b.drain()] == [[b"y" * 30]]

    def test_the_oldest_window_closes_every_open_bundle_together(self) -> None:
        b = Bundler(window_s=0.005, max_ticks=100, max_bytes=10**6)
        b.add(3, "A", b"1", 0.000, 1)
        b.add(4, "B", b"2", 0.003, 2)
        b.add(3, "A", b"3", 0.004, 3)
        assert b.due(0.0049) == []
        closed = b.due(0.005)  # B's window has 2 ms left: it leaves with A's, not later
        assert [(x.partition, x.values) for x in closed] == [(3, [b"1", b"3"]), (4, [b"2"])]
        assert b.open == {}
        assert b.next_due() is None

    def test_a_bundle_value_is_valid_json_of_its_ticks(self) -> None:
        b = Bundler(window_s=1.0, max_ticks=100, max_bytes=10**6)
        ticks = make_ticks(50, seed=2)
        for t in ticks:
            b.add(0, t.symbol, t.model_dump_json().encode(), 0.0, 0)
        [bundle] = b.drain()
        parsed = [Tick.model_validate(x) for x in json.loads(bundle.value())]
        assert parsed == ticks


def test_the_producer_lingers_only_without_bundles_unless_told() -> None:
    unset = Settings(ingest_linger_ms=None)
    assert linger_ms(unset, bundling=True) == 0  # the bundle window already gathered them
    assert linger_ms(unset, bundling=False) == 5
    told = Settings(ingest_linger_ms=7)
    assert (linger_ms(told, bundling=True), linger_ms(told, bundling=False)) == (7, 7)
