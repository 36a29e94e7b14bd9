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
