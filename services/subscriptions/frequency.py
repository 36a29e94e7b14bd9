"""Frequency rules, decided on event time: the alert's signal `ts`, not the wall clock.

- `every`: each matching alert.
- `once_per_day`: the first matching alert per (subscription, subject, local date), the
  date of the signal's `ts` in the subject's exchange zone (a pair: the zone of its
  first index, `a`).
- `cooldown`: an alert whose `ts` is at least `cooldown_s` after the `ts` of the last
  one delivered for the same (subscription, subject); earlier ones are suppressed.

Event time makes the decision a function of the signals alone: a replay, a restart or
a backlog after an outage decides exactly as the live run did (wall-clock cooldowns
would let a backlog through in a burst, or swallow it). The state lives in Redis and
is read and written by the delivery script itself (services/subscriptions/fanout.py).
"""

from __future__ import annotations

from datetime import tzinfo

from schemas.signals import AhPremium, AnySignal, IndexDivergence
from schemas.zones import ExchangeZones


def subject_zone(signal: AnySignal, zones: ExchangeZones) -> tzinfo:
    if isinstance(signal, IndexDivergence | AhPremium):
        return zones.zone_for(signal.a)
    return zones.zone_for(signal.symbol)


def local_day(signal: AnySignal, zones: ExchangeZones) -> str:
    """ISO date of the signal in its subject's exchange zone."""
    return signal.ts.astimezone(subject_zone(signal, zones)).date().isoformat()


def event_ms(signal: AnySignal) -> int:
    return int(signal.ts.timestamp() * 1000)
