"""A/H premium cases pinned by hand: the contract's fields, holding, the fixed rate,
the wall-clock release and the configuration errors (the property test against the naive
reference is test_ah_premium_reference.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from schemas.signals import AhPremium
from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import AhRule, Rules, RulesError
from tests.unit.detection.test_ah_premium_reference import FX, START, A, H


def tick(symbol: str, minute: int, price: float) -> Tick:
    return Tick(symbol=symbol, ts=START + timedelta(minutes=minute), price=price)


def ah_signals(engine: Engine, ticks: list[Tick]) -> list[AhPremium]:
    out = [s for t in ticks for s in engine_view_raw(engine.process(t))]
    return out + [s for s in engine.flush() if isinstance(s, AhPremium)]


def engine_view_raw(result: Late | list[Any]) -> list[AhPremium]:
    assert not isinstance(result, Late)
    return [s for s in result if isinstance(s, AhPremium)]


def test_open_hysteresis_close_and_flip_with_the_contract_fields() -> None:
    rules = Rules(divergence=(), ah=(AhRule(a=A, h=H, fx=FX, threshold_pct=30.0),))
    engine = Engine(rules)
    got = ah_signals(
        engine,
        [
            tick(FX, 0, 1.1),
            tick(A, 0, 100.0),
            tick(H, 0, 100.0),  # premium +10%: nothing
            tick(H, 1, 84.0),  # +30.95%: open a_premium
            tick(H, 2, 87.0),  # +26.4%: within the hysteresis band, stays open
            tick(H, 3, 90.0),  # +22.2% < 24: close
            tick(H, 4, 160.0),  # -31.25%: open h_premium
            tick(H, 5, 84.0),  # +30.95%: close h_premium, open a_premium
            tick(FX, 6, 1.08),  # the rate alone moves it: +28.6%, still open
        ],
    )
    assert [(s.phase, s.direction) for s in got] == [
        ("open", "a_premium"),
        ("close", "a_premium"),
        ("open", "h_premium"),
        ("close", "h_premium"),
        ("open", "a_premium"),
    ]
    first = got[0]
    assert first.pair == "A.SH/H.HK"
    assert (first.a, first.h, first.price_a, first.price_h, first.fx) == (A, H, 100.0, 84.0, 1.1)
    assert first.premium_pct == pytest.approx(100 * (100 * 1.1 / 84 - 1))
    assert first.threshold_pct == 30.0
    assert first.ts.utcoffset() == timedelta(hours=8)  # the H tick's exchange time
    assert first.subject == "A.SH/H.HK"


def test_legs_are_held_until_every_leg_reaches_their_ts() -> None:
    rules = Rules(divergence=(), ah=(AhRule(a=A, h=H, fx=FX, threshold_pct=30.0),))
    engine = Engine(rules)
    assert engine_view_raw(engine.process(tick(A, 0, 100.0))) == []
    assert engine_view_raw(engine.process(tick(H, 1, 80.0))) == []
    assert engine.listings[0].pending == 2  # fx has not ticked: nothing can be evaluated
    # fx at minute 1: the watermark is a's minute 0, so only a@0 is released
    assert engine_view_raw(engine.process(tick(FX, 1, 1.1))) == []
    assert engine.listings[0].pending == 2
    # a at minute 1: every leg has reached minute 1; a@1, h@1, fx@1 are evaluated in
    # that order and the premium exists (and opens) at fx@1, the last of them
    opened = engine_view_raw(engine.process(tick(A, 1, 100.0)))
    assert [(s.phase, s.ts) for s in opened] == [("open", START + timedelta(minutes=1))]
    assert opened[0].ts.utcoffset() == timedelta(0)  # the fx tick's zone: UTC
    assert engine.listings[0].pending == 0


def test_a_fixed_rate_is_always_there() -> None:
    rules = Rules(divergence=(), ah=(AhRule(a=A, h=H, fx_rate=1.1, threshold_pct=30.0),))
    engine = Engine(rules)
    got = ah_signals(engine, [tick(A, 0, 100.0), tick(H, 0, 84.0), tick(FX, 0, 2.0)])
    assert [(s.phase, s.fx) for s in got] == [("open", 1.1)]


def test_held_ticks_are_released_after_max_wait_s_of_wall_clock() -> None:
    rules = Rules(divergence=(), ah=(AhRule(a=A, h=H, fx_rate=1.1, max_wait_s=2.0),))
    engine = Engine(rules)
    assert engine.process(tick(A, 0, 100.0), now=10.0) == []
    assert engine.process(tick(H, 0, 50.0), now=10.5) != []  # watermark: both at minute 0
    # h is silent after minute 0: a's minute-5 tick (premium now -12%) waits for it
    assert engine.process(tick(A, 5, 40.0), now=11.0) == []
    assert engine.expire(12.9) == []
    released = engine.expire(13.0)  # 2 s after it arrived
    got: list[tuple[str, Any]] = [
        (s.phase, s.premium_pct) for s in released if isinstance(s, AhPremium)
    ]
    assert got == [("close", pytest.approx(-12.0))]
    assert engine.listings[0].pending == 0


@pytest.mark.parametrize(
    ("toml", "key", "message"),
    [
        ('a = "A.SH"\nh = "H.HK"\n', "ah.0.fx_rate", "needs fx"),
        ('a = "A.SH"\nh = "H.HK"\nfx = "FX"\nfx_rate = 1.1\n', "ah.0.fx_rate", "not both"),
        ('a = "A.SH"\nh = "H.HK"\nfx = "A.SH"\n', "ah.0", "'A.SH' twice"),
        ('a = "A.SH"\nh = "A.SH"\nfx_rate = 1.1\n', "ah.0", "'A.SH' twice"),
        ('a = "A.SH"\nh = "H.HK"\nfx_rate = 0\n', "ah.0.fx_rate", "greater than 0"),
        ('a = "A.SH"\nh = "H.HK"\nfx = "FX"\nwindow = "ytd"\n', "ah.0.window", "unknown key"),
        ('a = "A.SH"\nh = "H.HK"\nfx = "FX"\nhysteresis = 1.5\n', "ah.0.hysteresis", "1"),
        ('a = "A.SH"\nfx = "FX"\n', "ah.0.h", "required"),
    ],
)
def test_config_errors_name_the_key(toml: str, key: str, message: str) -> None:
    with pytest.raises(RulesError) as err:
        Rules.from_toml_text("[[ah]]\n" + toml)
    line = next(x for x in str(err.value).splitlines() if x.strip().startswith(key + ":"))
    assert message in line


def test_two_listings_with_the_same_subject_are_a_config_error() -> None:
    listing = '[[ah]]\na = "A.SH"\nh = "H.HK"\nfx = "FX"\n'
    with pytest.raises(RulesError, match=r"ah: .*listing A\.SH/H\.HK is configured twice"):
        Rules.from_toml_text(listing + listing.replace('fx = "FX"', "fx_rate = 1.1"))
    # the same two symbols as a divergence pair and as a listing is fine: other kinds
    both = Rules.from_toml_text('[[divergence]]\na = "A.SH"\nb = "H.HK"\n' + listing)
    assert both.ah[0].name == both.divergence[0].name
