"""The ingestor's own line screening and replay pacing, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.dead_letter import DeadLetter
from schemas.tick import Tick
from schemas.zones import ExchangeZones
from services.ingestor.pacing import MIN_SLEEP_S, Pacer, min_sleep_for
from services.ingestor.screening import Accepted, Screener
from services.parsing.feed import RawRecord

NOW = datetime(2026, 2, 13, tzinfo=UTC)


def screener() -> Screener:
    return Screener(ExchangeZones(), 5.0, "feed.csv", lambda: NOW)


def cells(symbol: str, ts: str, price: str) -> RawRecord:
    return RawRecord(2, f"{symbol},{ts},{price}", [symbol, ts, price, "", ""])


def test_tick_ts_is_in_the_exchange_zone() -> None:
    out = screener().screen(cells("2513.HK", "1770948000000", "1.5"))
    assert isinstance(out, Accepted)
    # What goes on the wire, and the tick the processor's model reads from it.
    assert out.value == (
        b'{"symbol":"2513.HK","ts":"2026-02-13T10:00:00+08:00","price":1.5,'
        b'"volume":0,"kind":"trade"}'
    )
    tick = Tick.model_validate_json(out.value)
    assert tick.ts.isoformat() == "2026-02-13T10:00:00+08:00"
    assert tick.model_dump_json().encode() == out.value


def test_lateness_is_per_symbol_and_bounded_by_the_allowance() -> None:
    s = screener()
    assert isinstance(s.screen(cells("A", "2026-02-13T10:00:10Z", "1")), Accepted)
    assert isinstance(s.screen(cells("B", "2026-02-13T09:00:00Z", "1")), Accepted)
    assert isinstance(s.screen(cells("A", "2026-02-13T10:00:05Z", "1")), Accepted)
    late = s.screen(cells("A", "2026-02-13T10:00:04.999Z", "1"))
    assert isinstance(late, DeadLetter)
    assert (late.reason, late.field, late.symbol, late.line) == ("late", "ts", "A", 2)
    # A late tick does not move the symbol's clock.
    assert s.latest_us["A"] > 0
    assert isinstance(s.screen(cells("A", "2026-02-13T10:00:06Z", "1")), Accepted)


def test_malformed_names_the_field_and_keeps_the_raw_line() -> None:
    dead = screener().screen(cells("2513.HK", "2026-02-13T10:00:00Z", "nan"))
    assert isinstance(dead, DeadLetter)
    assert (dead.reason, dead.field, dead.symbol) == ("malformed", "price", "2513.HK")
    assert dead.raw == "2513.HK,2026-02-13T10:00:00Z,nan"
    unsplit = screener().screen(RawRecord(7, "a,b", None, "expected 5 columns, found 2"))
    assert isinstance(unsplit, DeadLetter)
    assert (unsplit.field, unsplit.line, unsplit.detail) == (
        None,
        7,
        "expected 5 columns, found 2",
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_rate_spaces_ticks_from_the_first_one() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=4, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        pacer.wait(0)
    assert clock.slept == [0.25, 0.25, 0.25, 0.25]


def test_speed_follows_event_time_and_never_waits_for_a_late_tick() -> None:
    clock = FakeClock()
    pacer = Pacer(speed=10, clock=clock, sleep=clock.sleep)
    pacer.wait(0)
    pacer.wait(10_000_000)  # 10 s of event time at 10x
    pacer.wait(9_000_000)
    pacer.wait(30_000_000)
    assert clock.slept == [1.0, 2.0]


def test_ticks_of_one_bundle_window_are_paced_in_slots_of_a_quarter_window() -> None:
    """At 5,000 ticks/s a tick is due every 0.2 ms: with 20 ms bundles the pacer sleeps
    once per 5 ms (25 ticks), never letting a tick leave more than that early."""
    clock = FakeClock()
    pacer = Pacer(rate=5000, clock=clock, sleep=clock.sleep, min_sleep_s=min_sleep_for(20.0))
    for _ in range(501):
        pacer.wait(0)
    assert 19 <= len(clock.slept) <= 20  # 100 ms of ticks, a sleep per 5 ms or so
    assert all(s >= 0.005 for s in clock.slept)
    # The pace itself is kept: the last tick leaves less than a slot early.
    assert 0.1 - 0.005 < clock.now - 100.0 <= 0.1
    assert min_sleep_for(None) == MIN_SLEEP_S == min_sleep_for(2.0)
