"""The day moves (price_move, limit_hit, volume_spike) against the naive reference.

Random feeds over a few A-share boards, an index and a Hong Kong stock, with history
bars (some without volume, some repeated, some overlapping the ticks), late and
late-accepted ticks across local midnight, and random rules: the engine and
`naive_day_moves` must give the same signals in the same order, tick by tick.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.tick import Tick
from services.detection.engine import Engine
from services.detection.record_high import Late
from services.detection.rules import Rules
from tests.unit.naive_day_moves import Config, NaiveDayMoves, NBar, NTick

SH = ZoneInfo("Asia/Shanghai")
SYMBOLS = ["600001.SH", "600002.SH", "688001.SH", "300001.SZ", "830001.BJ", "000688.SH", "0001.HK"]
START = datetime(2026, 2, 2, 23, 58, 30, tzinfo=SH)  # the first steps cross midnight
STEPS = [0, 1, 2, 7, 60, 3600, 6 * 3600, 86400, 86400, -2, -4, -6]
FACTORS = [1.1, 1.2, 1.3, 0.9, 0.8, 0.7, 1.05, 0.95, 1.0, 1.0999, 1.1001, 1.199, 1.201]
DAY_KINDS = ("price_move", "limit_hit", "volume_spike")


@st.composite
def configs(draw: st.DrawFn) -> Config:
    levels = draw(
        st.none() | st.lists(st.sampled_from([1.0, 2.5, 5.0, 10.0, 20.0]), min_size=1, unique=True)
    )
    limits = None
    if draw(st.booleans()):
        limits = {
            "main_pct": 10.0,
            "star_pct": 20.0,
            "chinext_pct": 20.0,
            "bse_pct": 30.0,
            "st": draw(st.sampled_from([[], ["600002.SH"], ["688001.SH"]])),
            "st_pct": 5.0,
            "no_limit_days": draw(st.integers(0, 3)),
            "listings": draw(
                st.sampled_from(
                    [
                        {},
                        {"688001.SH": date(2026, 2, 1)},
                        {"688001.SH": date(2026, 2, 3), "600001.SH": date(2026, 1, 30)},
                    ]
                )
            ),
        }
    multiples = draw(
        st.none() | st.lists(st.sampled_from([1.5, 2.0, 3.0, 5.0]), min_size=1, unique=True)
    )
    return Config(levels=levels, limits=limits, days=draw(st.integers(1, 3)), multiples=multiples)


def rules_of(config: Config, windows: tuple[str, ...] = ("all_time",)) -> Rules:
    """The rules of `config`, with no pair and record highs in `windows`."""
    data: dict[str, Any] = {"divergence": [], "record_high": {"windows": list(windows)}}
    if config.levels is not None:
        data["price_move"] = {"levels_pct": config.levels}
    if config.limits is not None:
        data["limits"] = {
            **config.limits,
            "listings": {s: d.isoformat() for s, d in config.limits["listings"].items()},
        }
    if config.multiples is not None:
        data["volume_spike"] = {"days": config.days, "multiples": config.multiples}
    return Rules.from_mapping(data)


@st.composite
def feeds(draw: st.DrawFn) -> list[NTick | NBar]:
    events: list[NTick | NBar] = []
    for symbol in draw(st.lists(st.sampled_from(SYMBOLS), max_size=4, unique=True)):
        for _ in range(draw(st.integers(0, 4))):
            volume = draw(st.none() | st.integers(0, 300))
            events.append(
                NBar(
                    symbol,
                    date(2026, 1, 28) + timedelta(days=draw(st.integers(0, 8))),
                    draw(st.sampled_from([9.0, 10.0, 10.5, 20.47])),
                    volume,
                )
            )
    clock = START
    last: dict[str, float] = {}
    for _ in range(draw(st.integers(1, 60))):
        clock += timedelta(seconds=draw(st.sampled_from(STEPS)))
        symbol = draw(st.sampled_from(SYMBOLS))
        if symbol in last and draw(st.booleans()):
            price = round(last[symbol] * draw(st.sampled_from(FACTORS)), 2)
        else:
            price = draw(st.sampled_from([9.0, 10.0, 10.5, 11.0, 12.0, 20.47, 22.52, 18.42]))
        price = max(price, 0.01)
        last[symbol] = price
        kind = "index" if symbol == "000688.SH" else "trade"
        events.append(NTick(symbol, clock, price, draw(st.integers(0, 200)), kind))
        if draw(st.integers(0, 15)) == 0:  # a bar that arrives once the ticks began
            events.append(
                NBar(symbol, date(2026, 1, 29), 10.0, draw(st.none() | st.integers(0, 300)))
            )
    return events


def engine_view(result: Late | list[Any]) -> list[dict[str, Any]] | str:
    if isinstance(result, Late):
        return "late"
    return [s.model_dump() for s in result if s.kind in DAY_KINDS]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), feeds())
def test_day_moves_match_the_naive_reference(config: Config, events: list[NTick | NBar]) -> None:
    engine = Engine(rules_of(config))
    naive = NaiveDayMoves(config)
    for event in events:
        if isinstance(event, NBar):
            engine.add_bar(event.symbol, event.day.toordinal(), 30.0, event.close, event.volume)
            naive.bar(event)
            continue
        tick = Tick(
            symbol=event.symbol,
            ts=event.ts,
            price=event.price,
            volume=event.volume,
            kind=event.kind,
        )
        assert engine_view(engine.process(tick)) == naive.tick(event), event


@settings(max_examples=400, deadline=None)
@given(
    st.floats(0.01, 5_000.0).map(lambda c: round(c, 3)),
    st.sampled_from([1.0, 2.5, 5.0, 10.0, 20.0]),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(0, 5),
)
def test_a_price_on_the_edge_of_a_level_is_judged_exactly(
    close: float, level: float, up: bool, ulps: int, kind: int
) -> None:
    """Prices within a few floats of a level's price (and of the limit price, which the
    main board's 10% puts on the level of 10): `update`'s quick band must never hide one
    that the exact comparison fires on."""
    config = Config(levels=[level], limits=None if kind == 0 else LIMITS, multiples=None)
    engine = Engine(rules_of(config))
    naive = NaiveDayMoves(config)
    bar = NBar("600001.SH", date(2026, 2, 2), close, 100)
    engine.add_bar(bar.symbol, bar.day.toordinal(), 30.0, bar.close, bar.volume)
    naive.bar(bar)
    edge = close * (1.0 + (level if up else -level) / 100.0)
    for _ in range(abs(ulps)):
        edge = math.nextafter(edge, math.inf if ulps > 0 else -math.inf)
    ts = datetime(2026, 2, 3, 10, 0, tzinfo=SH)
    for n, price in enumerate([close, edge, close, round(edge, 2)]):
        event = NTick("600001.SH", ts + timedelta(seconds=n), price, 10, "trade")
        tick = Tick(symbol=event.symbol, ts=event.ts, price=price, volume=10, kind="trade")
        assert engine_view(engine.process(tick)) == naive.tick(event), event


LIMITS: dict[str, Any] = {
    "main_pct": 10.0,
    "star_pct": 20.0,
    "chinext_pct": 20.0,
    "bse_pct": 30.0,
    "st": [],
    "st_pct": 5.0,
    "no_limit_days": 0,
    "listings": {},
}
