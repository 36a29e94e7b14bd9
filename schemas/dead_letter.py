"""What goes to the dead-letter topic: the rejected input, untouched, and why."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

DeadLetterReason = Literal["malformed", "late"]


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: DeadLetterReason
    # The field at fault for `malformed` (e.g. "price"); None when the line itself is bad.
    field: str | None = None
    detail: str
    raw: str
    source: str
    line: int | None = None
    symbol: str | None = None
    received_at: AwareDatetime


# A dead letter quotes at most this much of the rejected record: a poison record near the
# broker's 1 MB limit would otherwise make a dead letter over it, whose send fails (and a
# consumer that must dead-letter before it commits would fail on it forever).
RAW_MAX = 64 * 1024


def quote_raw(value: bytes | None) -> str:
    """The rejected record as text for `DeadLetter.raw`, cut at RAW_MAX bytes."""
    if value is None:
        return ""
    if len(value) > RAW_MAX:
        head = value[:RAW_MAX].decode("utf-8", errors="replace")
        return f"{head}... [truncated: {len(value)} bytes]"
    return value.decode("utf-8", errors="replace")
