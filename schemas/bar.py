"""Bar: one daily bar of history (docs/signals.md, "History (daily bars)").

The value on the `history` topic (keyed by symbol), and what a history file's lines
validate to. Bars seed record highs (their `high`), divergence bases and the day moves' first
previous close (their `close`), and daily volumes (their `volume`).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.tick import SYMBOL_PATTERN

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The ticks' timestamp range (1970-01-01T00:00Z .. 2200-01-01T00:00Z), as local dates.
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(2199, 12, 31)


class Bar(BaseModel):
    """A valid daily bar: `close <= high`, and `low <= close`, `low <= open <= high` if given."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    symbol: Annotated[str, Field(min_length=1, max_length=32, pattern=SYMBOL_PATTERN)]
    date: date
    high: Annotated[float, Field(gt=0)]
    close: Annotated[float, Field(gt=0)]
    open: Annotated[float, Field(gt=0)] | None = None
    low: Annotated[float, Field(gt=0)] | None = None
    volume: Annotated[int, Field(ge=0)] | None = None

    @field_validator("volume", mode="before")
    @classmethod
    def _volume_or_none(cls, value: Any) -> int | None:
        # A volume that is not an integer >= 0 only takes the bar's daily volume away
        # (docs/signals.md, volume_spike); the bar's prices still count.
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int):
            return value if value >= 0 else None
        if isinstance(value, float):
            return int(value) if value.is_integer() and value >= 0 else None
        if isinstance(value, str):
            text = value.strip()
            return int(text) if text.isdigit() and text.isascii() else None
        return None

    @field_validator("high", "close", "open", "low", mode="before")
    @classmethod
    def _not_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, date):
            return value
        if not isinstance(value, str) or not _DATE_RE.fullmatch(value.strip()):
            raise ValueError("must be an exchange-local date YYYY-MM-DD")
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value.strip()!r} is not a real date") from None
        if not MIN_DATE <= day <= MAX_DATE:
            raise ValueError(f"{day.isoformat()} is outside 1970..2199")
        return day

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.close > self.high:
            raise ValueError(f"close {self.close:g} is above high {self.high:g}")
        if self.low is not None:
            if self.low > self.close:
                raise ValueError(f"low {self.low:g} is above close {self.close:g}")
            if self.open is not None and self.low > self.open:
                raise ValueError(f"low {self.low:g} is above open {self.open:g}")
        if self.open is not None and self.open > self.high:
            raise ValueError(f"open {self.open:g} is above high {self.high:g}")
        return self
