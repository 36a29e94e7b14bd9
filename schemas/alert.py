"""Alert: a signal as delivered to subscribers, with an id that makes delivery idempotent."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator

from schemas.signals import AlertKind, AnySignal, Signal


def alert_id_for(signal: AnySignal) -> str:
    """Same signal, same id: a replay or a restart can then be recognised and not redelivered.

    The signal's canonical JSON is fully determined by the detectors' input, so hashing it
    identifies the signal without any counter or clock.
    """
    return hashlib.sha256(signal.model_dump_json().encode()).hexdigest()[:32]


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str
    emitted_at: AwareDatetime
    kind: AlertKind
    subject: str
    signal: Signal

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind != self.signal.kind or self.subject != self.signal.subject:
            raise ValueError("kind and subject must match the signal")
        if self.alert_id != alert_id_for(self.signal):
            raise ValueError("alert_id does not match the signal")
        return self

    @classmethod
    def of(cls, signal: AnySignal, emitted_at: datetime) -> Alert:
        return cls(
            alert_id=alert_id_for(signal),
            emitted_at=emitted_at,
            kind=signal.kind,
            subject=signal.subject,
            signal=signal,
        )
