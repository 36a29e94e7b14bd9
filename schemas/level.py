"""A subscriber's own price level: what the API takes, stores and publishes.

`LevelSpec` is what a client sends (`{"symbol": "2513.HK", "above": 500}`, or `below`,
and an optional `note`). `Level` adds what the API gives it (`level_id`, the
subscription, `created_at`) and is the record on the compacted `levels` topic, keyed by
`level_id`: a record arms (or re-arms) the level, a tombstone (no value) disarms it.
The same model reads a backtest's levels file, whose lines need only `level_id`,
`symbol` and `above` or `below` (docs/signals.md, price_level).
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AwareDatetime, Field, field_validator, model_validator

from schemas.common import SUBSCRIPTION_ID_PATTERN, Strict, Symbol, check_printable
from schemas.signals import LEVEL_ID_PATTERN, LevelDirection

# The contract's bound on X: a finite number with 0 < X <= 1e9.
LEVEL_MAX = 1e9
NOTE_MAX = 200

LevelPrice = Annotated[float, Field(gt=0, le=LEVEL_MAX, allow_inf_nan=False)]


class LevelSpec(Strict):
    """What a client sends: a symbol and exactly one of `above` and `below`."""

    symbol: Symbol
    above: LevelPrice | None = None
    below: LevelPrice | None = None
    note: Annotated[str, Field(max_length=NOTE_MAX)] | None = None

    @field_validator("above", "below", mode="before")
    @classmethod
    def _not_boolean(cls, value: Any) -> Any:
        # A JSON true is not a price (lax mode would read it as 1).
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value

    @field_validator("note")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return None if value is None else check_printable(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above and below")
        return self

    @property
    def direction(self) -> LevelDirection:
        return "above" if self.above is not None else "below"

    @property
    def price(self) -> float:
        """X, the level's price."""
        value = self.above if self.above is not None else self.below
        assert value is not None  # _exactly_one
        return value


class Level(LevelSpec):
    """A level with its id: the API's answer and the `levels` topic's record."""

    level_id: Annotated[str, Field(pattern=LEVEL_ID_PATTERN)]
    # None only in a backtest's levels file: the API always names the subscription.
    subscription_id: Annotated[str, Field(pattern=SUBSCRIPTION_ID_PATTERN)] | None = None
    created_at: AwareDatetime | None = None
