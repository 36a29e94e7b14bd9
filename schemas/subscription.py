"""Subscription: who gets which alert, how often, and where (docs/subscriptions.md).

A subscription is what a user writes (`SubscriptionSpec`: name, filters, frequency,
expiry, delivery) plus what the registry adds (`id`, `created_at`). Every filter left
empty selects everything; a filter that belongs to some kinds of signal (windows, pairs,
phases, minimum change, spread or premium) restricts only alerts of those kinds.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.common import REFUSED_CATEGORIES, SUBSCRIPTION_ID_PATTERN, Strict, check_printable
from schemas.signals import (
    DIVERGENCE_WINDOW_PATTERN,
    SIGNAL_KINDS,
    AnyDirection,
    AnyPhase,
    RecordWindow,
    SignalKind,
)

# A symbol, or a glob over symbols: `*` any run of characters, `?` one character.
SYMBOL_GLOB_PATTERN = r"^[A-Za-z0-9.^_\-*?]{1,32}$"
PAIR_PATTERN = r"^[A-Za-z0-9.^_\-]{1,32}/[A-Za-z0-9.^_\-]{1,32}$"
_SUBSCRIPTION_ID_RE = re.compile(SUBSCRIPTION_ID_PATTERN)
# The scheme is case-insensitive (RFC 3986): `HTTP://` is `http://`.
WEBHOOK_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+[^\s]*$"
# Owner of a subscription: `token:<12 hex>` (a fingerprint of the API token that created
# it), `local` (the API without tokens) or `cli` (`marketsignal subscribe`).
OWNER_PATTERN = r"^(token:[a-f0-9]{12}|local|cli)$"
# An expiry before this is a mistake (`expires_at: 1` would be 1970), never a wish.
EXPIRES_AT_MIN = datetime(2020, 1, 1, tzinfo=UTC)
# Bounds that keep one subscription small: the registry holds thousands of them.
MAX_LIST = 200

SymbolGlob = Annotated[str, Field(pattern=SYMBOL_GLOB_PATTERN)]
PairName = Annotated[str, Field(pattern=PAIR_PATTERN)]
FrequencyMode = Literal["every", "once_per_day", "cooldown"]
Channel = Literal["stream", "pubsub", "webhook"]


def is_subscription_id(text: str) -> bool:
    return _SUBSCRIPTION_ID_RE.match(text) is not None


class Filters(Strict):
    """Which alerts: every non-empty field must accept the alert (AND); values in a list: OR."""

    # record_high: the symbol; index_divergence: either index of the pair; ah_premium:
    # the A or the H share.
    symbols: Annotated[tuple[SymbolGlob, ...], Field(max_length=MAX_LIST)] = ()
    kinds: Annotated[tuple[SignalKind, ...], Field(max_length=len(SIGNAL_KINDS))] = ()
    # record_high only
    windows: Annotated[tuple[RecordWindow, ...], Field(max_length=2)] = ()
    min_change_pct: Annotated[float, Field(ge=0, le=1e6)] | None = None
    # index_divergence and ah_premium (both have a pair and open/close phases)
    pairs: Annotated[tuple[PairName, ...], Field(max_length=MAX_LIST)] = ()
    # open/close: index_divergence and ah_premium; sealed/opened: limit_hit
    phases: Annotated[tuple[AnyPhase, ...], Field(max_length=4)] = ()
    # a_over_b/b_over_a: index_divergence; up/down: price_move and limit_hit
    directions: Annotated[tuple[AnyDirection, ...], Field(max_length=4)] = ()
    divergence_windows: Annotated[
        tuple[Annotated[str, Field(pattern=DIVERGENCE_WINDOW_PATTERN)], ...],
        Field(max_length=MAX_LIST),
    ] = ()
    # |spread_pp| at least this
    min_spread_pp: Annotated[float, Field(ge=0, le=1e6)] | None = None
    # ah_premium only: |premium_pct| at least this
    min_premium_pct: Annotated[float, Field(ge=0, le=1e6)] | None = None
    # price_move only: level_pct at least this
    min_level_pct: Annotated[float, Field(ge=0, le=1e6)] | None = None
    # volume_spike only: multiple at least this
    min_multiple: Annotated[float, Field(ge=0, le=1e6)] | None = None


class Webhook(Strict):
    url: Annotated[str, Field(pattern=WEBHOOK_URL_PATTERN, max_length=2048)]

    @field_validator("url")
    @classmethod
    def _parses(cls, value: str) -> str:
        # Where it may point (no loopback, private...) depends on settings: checked by
        # services/subscriptions/destinations.py at creation and at each delivery.
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if not parts.hostname:
            raise ValueError("the URL names no host")
        if port == 0:
            raise ValueError("port 0 is not a destination")
        if any(unicodedata.category(c) in REFUSED_CATEGORIES for c in value):
            raise ValueError("the URL holds a control or formatting character")
        try:
            parts.hostname.encode("idna")
        except UnicodeError:
            raise ValueError("the host is not a valid domain name") from None
        return value


class DeliverySpec(Strict):
    """Where a subscription's alerts go: at least one of the three."""

    stream: bool = True
    pubsub: bool = False
    webhook: Webhook | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if not (self.stream or self.pubsub or self.webhook is not None):
            raise ValueError("delivery needs at least one of stream, pubsub, webhook")
        return self

    @property
    def channels(self) -> tuple[Channel, ...]:
        out: list[Channel] = []
        if self.stream:
            out.append("stream")
        if self.pubsub:
            out.append("pubsub")
        if self.webhook is not None:
            out.append("webhook")
        return tuple(out)


class SubscriptionSpec(Strict):
    """What a client sends to create or replace a subscription."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    filters: Filters = Filters()
    # every: each matching alert; once_per_day: the first per subject and local date
    # (the subject's exchange zone); cooldown: then none for `cooldown_s` of event time.
    frequency: FrequencyMode = "every"
    cooldown_s: Annotated[int | None, Field(ge=1, le=366 * 86_400, validate_default=True)] = None
    expires_at: Annotated[AwareDatetime, Field(ge=EXPIRES_AT_MIN)] | None = None
    delivery: DeliverySpec = DeliverySpec()

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        check_printable(value)
        if not value.strip():
            raise ValueError("a name needs a visible character")
        return value

    @field_validator("cooldown_s")
    @classmethod
    def _cooldown_iff_mode(cls, value: int | None, info: ValidationInfo) -> int | None:
        # A field validator, not a model one, so the error names `cooldown_s`.
        frequency = info.data.get("frequency")
        if frequency == "cooldown" and value is None:
            raise ValueError("required when frequency is 'cooldown'")
        if frequency not in (None, "cooldown") and value is not None:
            raise ValueError("only allowed when frequency is 'cooldown'")
        return value


class Subscription(SubscriptionSpec):
    id: Annotated[str, Field(pattern=SUBSCRIPTION_ID_PATTERN)]
    owner: Annotated[str, Field(pattern=OWNER_PATTERN)] = "cli"
    created_at: AwareDatetime
    updated_at: AwareDatetime

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class CreatedSubscription(Strict):
    """The answer to a create: the subscription and, once only, its webhook secret."""

    subscription: Subscription
    # HMAC-SHA256 key of the X-Marketsignal-Signature header of webhook deliveries;
    # generated at creation (webhook or not, so one added later has it), returned once.
    webhook_secret: str


def sub_stream(sub_id: str) -> str:
    """Redis stream and pub/sub channel of one subscription (before the namespace)."""
    return f"alerts:sub:{sub_id}"
