"""Per-subscription delivery: each alert to the subscriptions that want it, once each.

Off the Kafka loop. The alerter's shared delivery (services/alerter/delivery.py) hands
each new alert to the fan-out queue (handoff.py) in the same atomic step as its dedupe
claim, then commits its Kafka offsets; `FanoutWorker` (fanout_worker.py), a thread of its
own, reads that queue with a consumer group and fans each alert out. So ten thousand
subscribers never hold up Kafka consumption, and an alert the alerter committed is never
lost to a crash: the entry stays pending until fanned out, and another worker claims it.

One Lua script per alert covers every matching subscription, atomically:

1. returns -1 if `fanout:done:{alert_id}` exists: fanned out before (a claimed
   entry, a replay);
2. for each subscription: *gone* (3) if it was deleted meanwhile; else the frequency
   rule on event time, *suppressed* (2) if it says no; else XADD to `alerts:sub:{id}`
   (stream delivery, capped with MAXLEN ~) and/or the webhook outbox `sub:{id}:outbox`,
   update the frequency state, PUBLISH on `alerts:sub:{id}` (pub/sub delivery):
   *delivered* (1);
3. sets the done key (last: Redis does not roll a script back).

A subscriber's own price level (`PriceLevel`) is matched by no filter: its one candidate
is the subscription it names (if it still exists and has not expired), and the same
script then applies that subscription's frequency and delivery to it like to any alert.

One key per alert, not per (alert, subscription), and one round trip per alert. Every key
the script touches is passed in KEYS, named by services/runtime/redis_keys.py; one script
touches every matching subscription's keys, so the registry needs a single Redis, not a
cluster. The subscriptions themselves travel as one argument of `id|flags|mode|cooldown_ms`
entries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import redis

from schemas.alert import Alert
from schemas.signals import AnySignal, PriceLevel
from schemas.subscription import Subscription
from schemas.zones import ExchangeZones
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.follower import LiveIndex
from services.subscriptions.frequency import event_ms, local_day
from services.subscriptions.matching import SubscriptionIndex
from services.subscriptions.registry import SubscriptionRegistry

log = logging.getLogger("marketsignal.fanout")

DELIVERED, SUPPRESSED, GONE = 1, 2, 3

# KEYS: subs hash, done key, then per subscription, in ARGV[6]'s order, the keys it
#       uses: its stream if flagged s or p (also its pub/sub channel), its webhook outbox
#       if flagged w, its frequency state if once_per_day or cooldown.
# ARGV: ttl, maxlen, alert JSON, event ms, subject, and the subscriptions as one string
#       of `id|flags|mode|cooldown_ms` entries joined by `;` (flags: s stream, p pubsub,
#       w webhook): one argument, not one each, as an alert can match thousands and each
#       argument costs the client more than its bytes.
# Returns one result per subscription, or -1 if done before.
FANOUT = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return -1
end
local ttl, maxlen, body = ARGV[1], ARGV[2], ARGV[3]
local ts, subject = tonumber(ARGV[4]), ARGV[5]
local out = {}
local k = 3
for id, flags, mode, cooldown in string.gmatch(ARGV[6], '([^;|]*)|([^;|]*)|([^;|]*)|([^;|]*)') do
  local to_stream = string.find(flags, 's', 1, true)
  local to_pubsub = string.find(flags, 'p', 1, true)
  local stream, outbox, state = nil, nil, nil
  if to_stream or to_pubsub then
    stream = KEYS[k]
    k = k + 1
  end
  if string.find(flags, 'w', 1, true) then
    outbox = KEYS[k]
    k = k + 1
  end
  if mode == 'once_per_day' or mode == 'cooldown' then
    state = KEYS[k]
    k = k + 1
  end
  local result = 1
  if redis.call('HEXISTS', KEYS[1], id) == 0 then
    result = 3
  else
    local last = nil
    if mode == 'once_per_day' then
      if redis.call('EXISTS', state) == 1 then
        result = 2
      end
    elseif mode == 'cooldown' then
      local raw = redis.call('HGET', state, subject)
      if raw then
        last = tonumber(raw)
        if ts - last < tonumber(cooldown) then
          result = 2
        end
      end
    end
    if result == 1 then
      if to_stream then
        redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'alert', body)
      end
      if outbox then
        redis.call('XADD', outbox, 'MAXLEN', '~', maxlen, '*', 'alert', body)
      end
      if mode == 'once_per_day' then
        redis.call('SET', state, '1', 'EX', ttl)
      elseif mode == 'cooldown' then
        if last == nil or ts > last then
          redis.call('HSET', state, subject, ts)
        end
        redis.call('EXPIRE', state, ttl)
      end
      if to_pubsub then
        redis.call('PUBLISH', stream, body)
      end
    end
  end
  out[#out + 1] = result
end
redis.call('SET', KEYS[2], '1', 'EX', ttl)
return out
"""


class _Encoded(NamedTuple):
    """A subscription as FANOUT takes it, but for its once_per_day key (the alert's day)."""

    sub: Subscription  # the version encoded: an update replaces the object
    entry: str  # `id|flags|mode|cooldown_ms`
    keys: tuple[bytes, ...]  # stream if s or p, outbox if w, the `last` hash if cooldown


def _encode(keys: RedisKeys, sub: Subscription) -> _Encoded:
    d = sub.delivery
    flags = ("s" if d.stream else "") + ("p" if d.pubsub else "")
    flags += "w" if d.webhook is not None else ""
    used = [keys.stream(sub.id)] if d.stream or d.pubsub else []
    if d.webhook is not None:
        used.append(keys.outbox(sub.id))
    if sub.frequency == "cooldown":
        used.append(keys.last(sub.id))
    entry = f"{sub.id}|{flags}|{sub.frequency}|{(sub.cooldown_s or 0) * 1000}"
    # Encoded once here rather than by the client at every call.
    return _Encoded(sub, entry, tuple(name.encode() for name in used))


def _candidates(index: SubscriptionIndex, signal: AnySignal) -> list[Subscription]:
    """The subscriptions an alert may go to: its own for a price level, else the matches."""
    if isinstance(signal, PriceLevel):
        own = index.subscriptions.get(signal.subscription_id or "")
        return [] if own is None else [own]
    return index.match(signal) if len(index) else []


@dataclass
class FanoutStats:
    alerts: int = 0
    delivered: int = 0
    duplicates: int = 0  # alerts fanned out before (replays, claimed entries)
    suppressed: int = 0
    gone: int = 0
    webhooks_queued: int = 0
    # Seconds from the alert's emission to its fan-out, newest last (bounded).
    latencies: list[float] = field(default_factory=list)


class SubscriptionFanout:
    """Fans alerts out to the subscriptions that match them. Synchronous."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        *,
        zones: ExchangeZones | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.settings = settings
        self.keys = RedisKeys(settings.namespace)
        self.live = LiveIndex(SubscriptionRegistry(client, settings))
        self.zones = zones if zones is not None else settings.rules().exchange_zones()
        self.now = now
        self.stats = FanoutStats()
        self._script = client.register_script(FANOUT)
        # Each subscription's entry and key names, built once per version of it: an alert
        # can match thousands of subscriptions.
        self._encoded: dict[str, _Encoded] = {}

    def fan_out(self, alerts: Sequence[Alert]) -> list[list[int]]:
        """Per alert, one result per matching unexpired subscription ([] if done before)."""
        if not alerts:
            return []
        index = self.live.current()
        now = self.now()
        settings, keys, encoded = self.settings, self.keys, self._encoded
        if len(encoded) > 2 * len(index) + 1000:
            encoded.clear()  # deleted subscriptions' entries
        pipe = self.client.pipeline(transaction=False)
        hooks: list[list[bool]] = []
        for alert in alerts:
            signal = alert.signal
            subs = [s for s in _candidates(index, signal) if not s.expired(now)]
            wanted_day = any(s.frequency == "once_per_day" for s in subs)
            day = local_day(signal, self.zones) if wanted_day else ""
            subject = alert.subject
            script_keys: list[str | bytes] = [keys.subs, keys.fanout_done(alert.alert_id)]
            entries: list[str] = []
            for sub in subs:
                enc = encoded.get(sub.id)
                if enc is None or enc.sub is not sub:
                    enc = encoded[sub.id] = _encode(keys, sub)
                entries.append(enc.entry)
                script_keys += enc.keys
                if sub.frequency == "once_per_day":
                    script_keys.append(keys.day(sub.id, subject, day))
            args: list[Any] = [
                settings.alert_dedupe_ttl_s,
                settings.sub_stream_maxlen,
                alert.model_dump_json(),
                event_ms(signal),
                subject,
                ";".join(entries),
            ]
            hooks.append([s.delivery.webhook is not None for s in subs])
            self._script(keys=script_keys, args=args, client=pipe)
        results: list[list[int]] = []
        stats = self.stats
        for answer, hook in zip(pipe.execute(), hooks, strict=True):
            stats.alerts += 1
            if isinstance(answer, int):
                stats.duplicates += 1
                results.append([])
                continue
            found = [int(r) for r in answer]
            results.append(found)
            stats.delivered += found.count(DELIVERED)
            stats.suppressed += found.count(SUPPRESSED)
            stats.gone += found.count(GONE)
            stats.webhooks_queued += sum(
                1 for r, h in zip(found, hook, strict=False) if h and r == DELIVERED
            )
        return results
