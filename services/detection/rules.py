"""Detection rules from TOML (docs/signals.md, "Configuration"), validated at load."""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.common import Strict, Symbol, field_problems
from schemas.signals import DIVERGENCE_WINDOW_PATTERN, pair_name
from schemas.zones import DEFAULT_ZONES, ExchangeZones

RecordWindowName = Literal["all_time", "52w"]
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class RulesError(ValueError):
    """A rules file that cannot be used, with every problem spelled out."""


class TickRules(Strict):
    allowed_lateness_s: Annotated[float, Field(ge=0)] = 5.0


class RecordHighRules(Strict):
    windows: tuple[RecordWindowName, ...] = ("all_time", "52w")
    step_pct: Annotated[float, Field(ge=0)] = 1.0

    @field_validator("windows")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("windows must not repeat")
        return value


class DivergenceRule(Strict):
    a: Symbol = "000688.SH"
    b: Symbol = "HSTECH.HK"
    window: Annotated[str, Field(pattern=DIVERGENCE_WINDOW_PATTERN)] = "ytd"
    threshold_pp: Annotated[float, Field(gt=0)] = 10.0
    hysteresis: Annotated[float, Field(gt=0, le=1)] = 0.8
    require_opposite_signs: bool = False
    max_wait_s: Annotated[float, Field(ge=0)] = 2.0

    @model_validator(mode="after")
    def _two_indices(self) -> Self:
        if self.a == self.b:
            raise ValueError(f"a pair needs two different indices, got {self.a!r} twice")
        return self

    @property
    def name(self) -> str:
        return pair_name(self.a, self.b)

    @property
    def window_days(self) -> int | None:
        """N for an `Nd` window, None for `ytd`."""
        return None if self.window == "ytd" else int(self.window[:-1])


class AhRule(Strict):
    """One dual listing (docs/signals.md "ah_premium"): A share, H share, and HKD per CNY."""

    a: Symbol
    h: Symbol
    # HKD per 1 CNY: the symbol whose ticks give it, or a fixed rate; exactly one.
    fx: Symbol | None = None
    fx_rate: Annotated[float | None, Field(gt=0, validate_default=True)] = None
    threshold_pct: Annotated[float, Field(gt=0)] = 30.0
    hysteresis: Annotated[float, Field(gt=0, le=1)] = 0.8
    max_wait_s: Annotated[float, Field(ge=0)] = 2.0

    @field_validator("fx_rate")
    @classmethod
    def _one_fx(cls, value: float | None, info: ValidationInfo) -> float | None:
        # A field validator on the later key, so the error names `fx_rate` (and a
        # missing fx_rate, validated with its default, is caught here too).
        if "fx" not in info.data:
            return value  # fx itself was invalid: that error already names it
        fx = info.data["fx"]
        if fx is not None and value is not None:
            raise ValueError("give either fx (a symbol) or fx_rate (a fixed rate), not both")
        if fx is None and value is None:
            raise ValueError("needs fx (a symbol giving HKD per CNY) or a fixed fx_rate")
        return value

    @model_validator(mode="after")
    def _distinct_legs(self) -> Self:
        legs = [self.a, self.h] + ([self.fx] if self.fx is not None else [])
        for leg in legs:
            if legs.count(leg) > 1:
                raise ValueError(f"a listing needs distinct a, h and fx, got {leg!r} twice")
        return self

    @property
    def name(self) -> str:
        return pair_name(self.a, self.h)

    @property
    def legs(self) -> tuple[str, ...]:
        """The symbols whose ticks the listing evaluates, in tie-break order (a, h, fx)."""
        return (self.a, self.h) if self.fx is None else (self.a, self.h, self.fx)


def _distinct_positive(value: tuple[float, ...], what: str) -> tuple[float, ...]:
    for item in value:
        if value.count(item) > 1:
            raise ValueError(f"{what} {item:g} is listed twice")
    return value


PositiveFloat = Annotated[float, Field(gt=0)]
Percentage = Annotated[float, Field(ge=0)]


class PriceMoveRules(Strict):
    """`[price_move]`: the % levels against the previous close (docs/signals.md)."""

    levels_pct: Annotated[tuple[PositiveFloat, ...], Field(min_length=1)] = (5.0, 10.0, 20.0)

    @field_validator("levels_pct")
    @classmethod
    def _distinct(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return _distinct_positive(value, "level")


def _listing_date(value: Any) -> date:
    # TOML gives a bare date as a date; a string must be the ISO form, nothing laxer
    # (pydantic would read an integer as a Unix time).
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a real date") from None
    raise ValueError(f"a listing date must be YYYY-MM-DD, got {value!r}")


ListingDate = Annotated[date, BeforeValidator(_listing_date)]


class LimitRules(Strict):
    """`[limits]`: A-share daily price limits by board (docs/signals.md, limit_hit)."""

    main_pct: Percentage = 10.0
    star_pct: Percentage = 20.0
    chinext_pct: Percentage = 20.0
    bse_pct: Percentage = 30.0
    st: tuple[Symbol, ...] = ()
    st_pct: Percentage = 5.0
    no_limit_days: Annotated[int, Field(ge=0)] = 5
    listings: dict[Symbol, ListingDate] = Field(default_factory=dict)

    @field_validator("st")
    @classmethod
    def _st_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            if value.count(symbol) > 1:
                raise ValueError(f"{symbol} is listed twice")
        return value


class VolumeSpikeRules(Strict):
    """`[volume_spike]`: today's volume against the mean of the `days` latest dates."""

    days: Annotated[int, Field(ge=1)] = 5
    multiples: Annotated[tuple[PositiveFloat, ...], Field(min_length=1)] = (2.0, 5.0)

    @field_validator("multiples")
    @classmethod
    def _distinct(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return _distinct_positive(value, "multiple")


def _default_pairs() -> tuple[DivergenceRule, ...]:
    return (DivergenceRule(),)


class Rules(Strict):
    ticks: TickRules = TickRules()
    timezones: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ZONES))
    record_high: RecordHighRules = RecordHighRules()
    divergence: tuple[DivergenceRule, ...] = Field(default_factory=_default_pairs)
    ah: tuple[AhRule, ...] = ()
    # Day moves: each off unless its table is present (an empty table: the defaults).
    price_move: PriceMoveRules | None = None
    limits: LimitRules | None = None
    volume_spike: VolumeSpikeRules | None = None

    @field_validator("timezones")
    @classmethod
    def _zones_exist(cls, value: dict[str, str]) -> dict[str, str]:
        for suffix, zone in value.items():
            if not suffix.startswith(".") or len(suffix) < 2:
                raise ValueError(f"suffix {suffix!r} must start with '.', like '.HK'")
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{suffix!r}: {zone!r} is not an IANA time zone") from None
        # The three defaults stay unless overridden: a file naming only ".T" keeps ".HK".
        return {**DEFAULT_ZONES, **value}

    @field_validator("divergence")
    @classmethod
    def _distinct_pairs(cls, value: tuple[DivergenceRule, ...]) -> tuple[DivergenceRule, ...]:
        names = [rule.name for rule in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"pair {name} is configured twice")
        return value

    @field_validator("ah")
    @classmethod
    def _distinct_listings(cls, value: tuple[AhRule, ...]) -> tuple[AhRule, ...]:
        names = [rule.name for rule in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"listing {name} is configured twice")
        return value

    def listings_of(self) -> dict[str, list[AhRule]]:
        """Symbol -> the configured A/H listings it is a leg of (a, h or fx)."""
        out: dict[str, list[AhRule]] = {}
        for rule in self.ah:
            for leg in rule.legs:
                out.setdefault(leg, []).append(rule)
        return out

    def pairs_of(self) -> dict[str, list[DivergenceRule]]:
        """Symbol -> the configured pairs it is an index of (a tick may feed several)."""
        out: dict[str, list[DivergenceRule]] = {}
        for rule in self.divergence:
            out.setdefault(rule.a, []).append(rule)
            out.setdefault(rule.b, []).append(rule)
        return out

    def exchange_zones(self) -> ExchangeZones:
        return ExchangeZones(self.timezones)

    @classmethod
    def from_toml_text(cls, text: str, source: str = "<rules>") -> Rules:
        try:
            data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RulesError(f"{source}: not valid TOML: {exc}") from None
        return cls.from_mapping(data, source)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "<rules>") -> Rules:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [
                f"  {p.field or '(top level)'}: "
                + ("unknown key" if p.type == "extra_forbidden" else p.message)
                for p in field_problems(exc)
            ]
            raise RulesError(f"{source}: invalid rules\n" + "\n".join(problems)) from None

    @classmethod
    def load(cls, path: str | Path | None) -> Rules:
        if path is None:
            return cls()
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesError(f"{p}: cannot read rules file: {exc.strerror}") from None
        return cls.from_toml_text(text, str(p))
