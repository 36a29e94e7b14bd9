"""The signal kinds the detectors emit (docs/signals.md is the contract)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, TypeAdapter

from schemas.common import SUBSCRIPTION_ID_PATTERN, Strict, Symbol

RecordWindow = Literal["all_time", "52w"]
Phase = Literal["open", "close"]
Direction = Literal["a_over_b", "b_over_a"]
AhDirection = Literal["a_premium", "h_premium"]
DIVERGENCE_WINDOW_PATTERN = r"^(ytd|[1-9][0-9]{0,3}d)$"


def _two_legs(shape: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value.count("/") != 1:
            raise ValueError(f"pair must be '{shape}'")
        return value

    return check


class RecordHigh(Strict):
    """A symbol traded above its highest earlier price in `window`."""

    kind: Literal["record_high"] = "record_high"
    symbol: Symbol
    ts: AwareDatetime
    price: float
    window: RecordWindow
    previous_high: float
    previous_high_ts: AwareDatetime
    change_pct: float

    @property
    def subject(self) -> str:
        return self.symbol


class IndexDivergence(Strict):
    """Two indices' returns over `window` moved apart (`open`) or back together (`close`)."""

    kind: Literal["index_divergence"] = "index_divergence"
    pair: Annotated[str, AfterValidator(_two_legs("A/B"))]
    a: Symbol
    b: Symbol
    ts: AwareDatetime
    phase: Phase
    direction: Direction
    return_a_pct: float
    return_b_pct: float
    spread_pp: float
    threshold_pp: float
    window: Annotated[str, Field(pattern=DIVERGENCE_WINDOW_PATTERN)]

    @property
    def subject(self) -> str:
        return self.pair


class AhPremium(Strict):
    """A dual listing's A share, in HKD, moved away from its H share (`open`) or back (`close`).

    `premium_pct` = 100 * (price_a * fx / price_h - 1): positive when the A share (CNY,
    converted at `fx` HKD per CNY) trades above the H share (HKD).
    """

    kind: Literal["ah_premium"] = "ah_premium"
    pair: Annotated[str, AfterValidator(_two_legs("A/H"))]
    a: Symbol
    h: Symbol
    ts: AwareDatetime
    phase: Phase
    direction: AhDirection
    price_a: float
    price_h: float
    fx: float
    premium_pct: float
    threshold_pct: float

    @property
    def subject(self) -> str:
        return self.pair


MoveDirection = Literal["up", "down"]
LimitPhase = Literal["sealed", "opened"]
# What a subscription's `phases` and `directions` may list: every kind's values.
AnyPhase = Literal["open", "close", "sealed", "opened"]
AnyDirection = Literal["a_over_b", "b_over_a", "up", "down"]
_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class PriceMove(Strict):
    """A symbol's price against its previous close reached `level_pct` up or down today."""

    kind: Literal["price_move"] = "price_move"
    symbol: Symbol
    ts: AwareDatetime
    price: float
    direction: MoveDirection
    level_pct: float
    change_pct: float
    previous_close: float
    previous_close_date: Annotated[str, Field(pattern=_DATE_PATTERN)]

    @property
    def subject(self) -> str:
        return self.symbol


class LimitHit(Strict):
    """An A-share trade reached its daily price limit (`sealed`) or left it (`opened`)."""

    kind: Literal["limit_hit"] = "limit_hit"
    symbol: Symbol
    ts: AwareDatetime
    price: float
    direction: MoveDirection
    phase: LimitPhase
    limit_price: float
    limit_pct: float
    previous_close: float
    seals: Annotated[int, Field(ge=1)]

    @property
    def subject(self) -> str:
        return self.symbol


class VolumeSpike(Strict):
    """Today's volume so far reached `multiple` times the mean of the last `days` dates."""

    kind: Literal["volume_spike"] = "volume_spike"
    symbol: Symbol
    ts: AwareDatetime
    price: float
    volume: Annotated[int, Field(ge=0)]
    average_volume: float
    multiple: float
    days: Annotated[int, Field(ge=1)]

    @property
    def subject(self) -> str:
        return self.symbol


LevelDirection = Literal["above", "below"]
# A level's id: the API gives 16 hex digits; a backtest's levels file may use any name.
LEVEL_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


class PriceLevel(Strict):
    """A subscriber's own level was crossed: `previous_price < level <= price` (above) or
    `previous_price > level >= price` (below). Delivered to `subscription_id` only."""

    kind: Literal["price_level"] = "price_level"
    symbol: Symbol
    ts: AwareDatetime
    price: float
    previous_price: float
    level: float
    direction: LevelDirection
    # None in a backtest, whose levels belong to no subscription.
    subscription_id: Annotated[str, Field(pattern=SUBSCRIPTION_ID_PATTERN)] | None
    level_id: Annotated[str, Field(pattern=LEVEL_ID_PATTERN)]

    @property
    def subject(self) -> str:
        return self.symbol


AnySignal = (
    RecordHigh | IndexDivergence | AhPremium | PriceMove | LimitHit | VolumeSpike | PriceLevel
)
Signal = Annotated[AnySignal, Field(discriminator="kind")]
# The kinds the rules emit for every reader; what a subscription's `kinds` filter names.
SignalKind = Literal[
    "record_high", "index_divergence", "ah_premium", "price_move", "limit_hit", "volume_spike"
]
# Every kind an alert can have: the public ones and a subscriber's own price levels.
AlertKind = SignalKind | Literal["price_level"]
# Kinds delivered only to the subscription the signal names: never on the shared
# `alerts` stream or `alerts:*` channels.
PRIVATE_KINDS: frozenset[str] = frozenset(("price_level",))
SIGNAL_KINDS: tuple[str, ...] = (
    "record_high",
    "index_divergence",
    "ah_premium",
    "price_move",
    "limit_hit",
    "volume_spike",
)
# The kinds whose subject is one symbol (the others name a pair or listing).
SYMBOL_KINDS: frozenset[str] = frozenset(
    ("record_high", "price_move", "limit_hit", "volume_spike", "price_level")
)
SIGNAL_ADAPTER: TypeAdapter[AnySignal] = TypeAdapter(Signal)


def pair_name(a: str, b: str) -> str:
    return f"{a}/{b}"
