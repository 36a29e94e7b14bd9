"""Hand-written cases that pin docs/signals.md's rules one by one, with the figures spelled out."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.signals import SIGNAL_ADAPTER, IndexDivergence, RecordHigh
from schemas.tick import Tick
from services.backtest.run import run_backtest
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import DivergenceRule, RecordHighRules, Rules, TickRules

T0 = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Hong Kong


def tick(symbol: str, ts: datetime, price: float) -> Tick:
    return Tick(symbol=symbol, ts=ts, price=price)


def signals(result: Late | list[Any]) -> list[Any]:
    assert not isinstance(result, Late)
    return result


def record_rules(**record_high: Any) -> Rules:
    return Rules(record_high=RecordHighRules(**record_high), divergence=())


# -- record_high ----------------------------------------------------------------------


def test_first_tick_sets_the_baseline_and_emits_nothing() -> None:
    engine = Engine(record_rules())
    assert engine.process(tick("X.HK", T0, 100.0)) == []
    assert engine.process(tick("X.HK", T0 + timedelta(seconds=1), 100.0)) == []  # not strictly
    assert engine.process(tick("Y.HK", T0, 500.0)) == []  # per symbol


def test_all_time_high_fields() -> None:
    engine = Engine(record_rules())
    engine.process(tick("X.HK", T0, 100.0))
    engine.process(tick("X.HK", T0 + timedelta(minutes=1), 100.0))  # a tie, later
    [signal] = signals(engine.process(tick("X.HK", T0 + timedelta(minutes=2), 125.0)))
    assert isinstance(signal, RecordHigh)
    assert signal.window == "all_time"
    assert signal.previous_high == 100.0
    assert signal.previous_high_ts == T0  # the earliest tick that reached it
    assert signal.change_pct == pytest.approx(25.0)
    assert signal.ts.isoformat() == "2025-03-03T10:02:00+08:00"  # in the exchange zone
    assert signal.previous_high_ts.isoformat() == "2025-03-03T10:00:00+08:00"


def test_52w_high_below_an_old_all_time_high() -> None:
    engine = Engine(record_rules())
    old = T0 - timedelta(days=400)
    engine.process(tick("X.HK", old, 200.0))
    assert engine.process(tick("X.HK", T0, 100.0)) == []  # nothing in D-364..D yet
    [signal] = signals(engine.process(tick("X.HK", T0 + timedelta(days=1), 120.0)))
    assert (signal.window, signal.previous_high, signal.previous_high_ts) == ("52w", 100.0, T0)
    # an all-time high is reported as all_time only
    [signal] = signals(engine.process(tick("X.HK", T0 + timedelta(days=2), 250.0)))
    assert (signal.window, signal.previous_high, signal.previous_high_ts) == ("all_time", 200, old)


def test_the_52w_window_is_365_local_dates() -> None:
    engine = Engine(record_rules(windows=("52w",)))
    engine.process(tick("Z", T0, 200.0))
    engine.process(tick("Z", T0 + timedelta(days=1), 100.0))
    # 364 days after T0: T0's date is D-364, still inside
    assert engine.process(tick("Z", T0 + timedelta(days=364), 150.0)) == []
    # 365 days after T0: T0 dropped out, the day-1 tick (100) and the 150 remain
    [signal] = signals(engine.process(tick("Z", T0 + timedelta(days=365), 160.0)))
    assert (signal.window, signal.previous_high) == ("52w", 150.0)


def test_debounce_within_a_local_date_and_reset_on_the_next() -> None:
    engine = Engine(record_rules(step_pct=1.0))
    sym = "X.HK"
    engine.process(tick(sym, T0, 100.0))
    assert len(signals(engine.process(tick(sym, T0 + timedelta(minutes=1), 101.0)))) == 1
    # 101.5 < 101 * 1.01: suppressed, and not re-classified as a 52w high either
    assert engine.process(tick(sym, T0 + timedelta(minutes=2), 101.5)) == []
    [signal] = signals(engine.process(tick(sym, T0 + timedelta(minutes=3), 102.5)))
    assert signal.previous_high == 101.5  # the suppressed tick still counts as history
    # the next local date (Hong Kong midnight is 16:00 UTC): the first qualifying tick emits
    next_day = datetime(2025, 3, 3, 16, 0, 1, tzinfo=UTC)
    assert len(signals(engine.process(tick(sym, next_day, 102.6)))) == 1


def test_debounce_uses_the_local_date_not_the_utc_date() -> None:
    engine = Engine(record_rules(step_pct=5.0))
    sym = "X.HK"
    engine.process(tick(sym, datetime(2025, 3, 3, 15, 0, tzinfo=UTC), 100.0))
    assert len(signals(engine.process(tick(sym, datetime(2025, 3, 3, 15, 30, tzinfo=UTC), 101))))
    # 16:30 UTC is the next day in Hong Kong (same UTC date): emits despite < 5 %
    assert len(signals(engine.process(tick(sym, datetime(2025, 3, 3, 16, 30, tzinfo=UTC), 102))))


def test_debounce_memory_is_per_local_date() -> None:
    """A late-but-accepted tick of yesterday neither uses nor resets today's memory."""
    engine = Engine(
        Rules(
            ticks=TickRules(allowed_lateness_s=60),
            record_high=RecordHighRules(windows=("all_time",), step_pct=1.0),
            divergence=(),
        )
    )
    sym = "Z"  # UTC
    midnight = datetime(2025, 3, 4, tzinfo=UTC)
    engine.process(tick(sym, midnight - timedelta(hours=1), 100.0))
    assert len(signals(engine.process(tick(sym, midnight - timedelta(seconds=30), 101.0)))) == 1
    [today] = signals(engine.process(tick(sym, midnight + timedelta(seconds=1), 102.0)))
    assert today.ts.date() == midnight.date()
    # yesterday, 20 s late but accepted: judged against yesterday's 101 (>= 1% above)
    [late] = signals(engine.process(tick(sym, midnight - timedelta(seconds=19), 103.0)))
    assert late.ts.date() == (midnight - timedelta(days=1)).date()
    # today again, an all-time high (> 103) but under 102 * 1.01 = 103.02: today's memory
    # is still 102, so it is suppressed (a last-signal-only memory would have let it fire)
    assert engine.process(tick(sym, midnight + timedelta(seconds=2), 103.01)) == []
    assert len(signals(engine.process(tick(sym, midnight + timedelta(seconds=3), 103.02)))) == 1


def test_late_tick_is_refused_and_changes_no_state() -> None:
    engine = Engine(Rules(ticks=TickRules(allowed_lateness_s=5), divergence=()))
    engine.process(tick("Z", T0, 100.0))
    engine.process(tick("Z", T0 + timedelta(seconds=10), 100.0))
    # exactly allowed_lateness_s earlier is accepted (and a new high)
    assert len(signals(engine.process(tick("Z", T0 + timedelta(seconds=5), 101.0)))) == 1
    late = engine.process(tick("Z", T0 + timedelta(seconds=5, microseconds=-1), 300.0))
    assert isinstance(late, Late)
    assert late.behind_s == pytest.approx(5.000001)
    assert late.latest == T0 + timedelta(seconds=10)
    # the late 300 did not move the high: 200 is a new high over 101
    [signal] = signals(engine.process(tick("Z", T0 + timedelta(seconds=11), 200.0)))
    assert signal.previous_high == 101.0


# -- index_divergence -----------------------------------------------------------------

DIV = DivergenceRule(a="A", b="B", window="ytd", threshold_pp=10.0, hysteresis=0.8)


def run_pair(rule: DivergenceRule, ticks: list[tuple[str, datetime, float]]) -> list[Any]:
    """The backtest's signals for `ticks` (a CSV) under `rule` alone."""
    rules = Rules(divergence=(rule,), record_high=RecordHighRules(windows=()))
    csv = "symbol,ts,price\n" + "".join(f"{s},{ts.isoformat()},{p!r}\n" for s, ts, p in ticks)
    written, err = io.BytesIO(), io.StringIO()
    run_backtest(Path("pair.csv"), rules, written, err, stream=io.StringIO(csv), progress=False)
    assert err.getvalue() == ""  # nothing malformed, nothing late
    out = [SIGNAL_ADAPTER.validate_json(line) for line in written.getvalue().splitlines()]
    assert all(isinstance(s, IndexDivergence) for s in out)
    return [(s.ts, s.phase, s.direction, round(s.spread_pp, 6)) for s in out]


def test_divergence_open_hold_close_flip() -> None:
    d = datetime(2025, 1, 2, 9, 0, tzinfo=UTC)

    def at(minute: int) -> datetime:
        return d + timedelta(minutes=minute)

    ticks = [
        ("A", at(0), 100.0),
        ("B", at(0), 100.0),  # bases: the first ticks of the year
        ("A", at(1), 111.0),
        ("B", at(1), 100.0),  # +11 pp: open a_over_b (at A's tick)
        ("A", at(2), 108.5),
        ("B", at(2), 100.0),  # 8.5 >= 10 * 0.8: still open
        ("A", at(3), 107.0),
        ("B", at(3), 100.0),  # 7 < 8: close
        ("A", at(4), 111.0),
        ("B", at(4), 125.0),  # open a_over_b, then -14: close and open b_over_a
    ]
    assert run_pair(DIV, ticks) == [
        (at(1), "open", "a_over_b", 11.0),
        (at(3), "close", "a_over_b", 7.0),
        (at(4), "open", "a_over_b", 11.0),
        (at(4), "close", "a_over_b", -14.0),
        (at(4), "open", "b_over_a", -14.0),
    ]


def test_require_opposite_signs() -> None:
    rule = DIV.model_copy(update={"require_opposite_signs": True})
    d = datetime(2025, 1, 2, 9, 0, tzinfo=UTC)
    same_sign = [("A", d, 100.0), ("B", d, 100.0), ("A", d, 125.0), ("B", d, 110.0)]
    assert run_pair(rule, same_sign) == []  # +15 pp, but both indices rose
    opposite = [*same_sign, ("B", d + timedelta(seconds=1), 95.0)]
    assert run_pair(rule, opposite) == [(d + timedelta(seconds=1), "open", "a_over_b", 30.0)]


def test_ytd_new_year_resets_an_open_divergence_silently() -> None:
    dec = datetime(2024, 12, 31, 9, 0, tzinfo=UTC)
    jan = datetime(2025, 1, 2, 9, 0, tzinfo=UTC)
    ticks = [
        ("A", dec - timedelta(days=1), 100.0),
        ("B", dec - timedelta(days=1), 100.0),
        ("A", dec, 120.0),
        ("B", dec, 100.0),  # +20 pp: open
        # the new year's base is last year's last price (120 and 100): +5 pp, but the
        # open state is gone without a close, so a later +12 pp opens again
        ("A", jan, 126.0),
        ("B", jan, 100.0),
        ("A", jan + timedelta(minutes=1), 134.4),
        ("B", jan + timedelta(minutes=1), 100.0),
    ]
    assert run_pair(DIV, ticks) == [
        (dec, "open", "a_over_b", 20.0),
        (jan + timedelta(minutes=1), "open", "a_over_b", 12.0),
    ]


def test_nd_window_needs_a_base_n_days_back() -> None:
    rule = DIV.model_copy(update={"window": "3d"})
    d = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
    ticks = [
        ("A", d, 100.0),
        ("B", d, 100.0),
        ("A", d + timedelta(days=2), 130.0),
        ("B", d + timedelta(days=2), 100.0),  # no date <= D-3 yet: not evaluated
        ("A", d + timedelta(days=3), 115.0),
        ("B", d + timedelta(days=3), 100.0),  # base = day 0: +15 pp
    ]
    assert run_pair(rule, ticks) == [(d + timedelta(days=3), "open", "a_over_b", 15.0)]


def test_pair_ticks_are_evaluated_in_event_time_order() -> None:
    """b arrives late (within lateness): the held a ticks wait and run in ts order."""
    d = datetime(2025, 1, 2, 9, 0, tzinfo=UTC)
    in_order = [
        ("A", d, 100.0),
        ("B", d, 100.0),
        ("A", d + timedelta(seconds=1), 111.0),
        ("B", d + timedelta(seconds=2), 102.0),  # +9 pp: stays open
        ("A", d + timedelta(seconds=3), 111.0),
    ]
    shuffled = [in_order[0], in_order[2], in_order[4], in_order[1], in_order[3]]
    want = [(d + timedelta(seconds=1), "open", "a_over_b", 11.0)]
    assert run_pair(DIV, in_order) == want
    assert run_pair(DIV, shuffled) == want


def test_a_held_tick_is_released_after_max_wait_of_wall_clock() -> None:
    engine = Engine(Rules(divergence=(DIV,), record_high=RecordHighRules(windows=())))
    d = datetime(2025, 1, 2, 9, 0, tzinfo=UTC)
    assert engine.process(tick("A", d, 100.0), now=0.0) == []
    assert engine.process(tick("B", d, 100.0), now=0.0) == []
    # b goes quiet; a's +20 % waits for the watermark, then for max_wait_s (2 s)
    assert engine.process(tick("A", d + timedelta(seconds=1), 120.0), now=10.0) == []
    assert engine.expire(11.0) == []
    [signal] = engine.expire(15.0)
    assert (signal.phase, signal.direction) == ("open", "a_over_b")
    assert engine.flush() == []
