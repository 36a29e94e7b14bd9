"""Per-subscription delivery: each alert to the subscriptions that want it, once each.

`SubscriptionDelivery` wraps the shared delivery (stream `alerts` and the
`alerts:{kind}:{subject}` channels, unchanged) and, for every alert of the batch, new or
replayed, runs one Lua script per matching subscription. The script, atomically:

1. returns 3 if the subscription was deleted meanwhile (nothing is written);
2. returns 0 if `sub:{id}:seen:{alert_id}` exists: decided before (a replay, a restart);
3. applies the frequency rule on event time; if it suppresses the alert, claims the
   seen key as `s` and returns 2 (a replay decides the same way, cheaply);
4. otherwise XADDs the alert to `alerts:sub:{id}` (stream delivery, capped with MAXLEN ~)
   and/or to the webhook outbox `sub:{id}:outbox`, updates the frequency state, claims
   the seen key (after the writes: Redis does not roll a script back), then PUBLISHes
   on `alerts:sub:{id}` (pub/sub delivery), and returns 1.

Replayed alerts go through the scripts too: a crash after the shared delivery and before
this one is then completed by the replay, never lost, and never doubled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from schemas.alert import Alert
from schemas.zones import ExchangeZones
from services.alerter.frequency import event_ms, local_day
from services.alerter.relay import Delivery
from services.alerter.subscriptions import LiveIndex, SubscriptionKeys, SubscriptionRegistry
from services.settings import Settings

DELIVERED, DUPLICATE, SUPPRESSED, GONE = 1, 0, 2, 3

# KEYS: subs, seen, stream, frequency state (day key or last-ts hash), outbox.
# ARGV: id, ttl, maxlen, pubsub channel or '', alert JSON, stream '1'/'0', webhook
#       '1'/'0', mode, cooldown ms, event ms, subject.
DELIVER_TO_SUBSCRIPTION = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 3
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local mode = ARGV[8]
local ts = tonumber(ARGV[10])
local last = nil
if mode == 'once_per_day' then
  if redis.call('EXISTS', KEYS[4]) == 1 then
    redis.call('SET', KEYS[2], 's', 'EX', ARGV[2])
    return 2
  end
elseif mode == 'cooldown' then
  local raw = redis.call('HGET', KEYS[4], ARGV[11])
  if raw then
    last = tonumber(raw)
    if ts - last < tonumber(ARGV[9]) then
      redis.call('SET', KEYS[2], 's', 'EX', ARGV[2])
      return 2
    end
  end
end
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'alert', ARGV[5])
end
if ARGV[7] == '1' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'alert', ARGV[5])
end
if mode == 'once_per_day' then
  redis.call('SET', KEYS[4], '1', 'EX', ARGV[2])
elseif mode == 'cooldown' then
  if last == nil or ts > last then
    redis.call('HSET', KEYS[4], ARGV[11], ts)
  end
  redis.call('EXPIRE', KEYS[4], ARGV[2])
end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 1
"""


@dataclass
class FanoutStats:
    delivered: int = 0
    duplicates: int = 0
    suppressed: int = 0
    gone: int = 0
    webhooks_queued: int = 0


class SubscriptionDelivery:
    """A `Delivery`: the shared delivery first, then every matching subscription."""

    def __init__(
        self,
        shared: Delivery,
        client: redis.Redis,
        settings: Settings,
        *,
        zones: ExchangeZones | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.shared = shared
        self.client = client
        self.settings = settings
        self.keys = SubscriptionKeys(settings)
        self.live = LiveIndex(SubscriptionRegistry(client, settings))
        self.zones = zones if zones is not None else settings.rules().exchange_zones()
        self.now = now
        self.stats = FanoutStats()
        self._script = client.register_script(DELIVER_TO_SUBSCRIPTION)

    def deliver(self, alerts: list[Alert]) -> list[bool]:
        result = self.shared.deliver(alerts)
        self.deliver_to_subscriptions(alerts)
        return result

    def deliver_to_subscriptions(self, alerts: Sequence[Alert]) -> list[int]:
        """One script result per (alert, matching subscription), in that order."""
        if not alerts:
            return []
        index = self.live.current()
        if not len(index):
            return []
        now = self.now()
        settings, keys = self.settings, self.keys
        ttl, maxlen = settings.alert_dedupe_ttl_s, settings.sub_stream_maxlen
        pipe = self.client.pipeline(transaction=False)
        hooks: list[bool] = []
        for alert in alerts:
            signal = alert.signal
            subs = index.match(signal)
            if not subs:
                continue
            body = alert.model_dump_json()
            ts_ms = event_ms(signal)
            day: str | None = None
            for sub in subs:
                if sub.expired(now):
                    continue
                stream = keys.stream(sub.id)
                if sub.frequency == "once_per_day":
                    if day is None:
                        day = local_day(signal, self.zones)
                    state = keys.day(sub.id, alert.subject, day)
                else:
                    state = keys.last(sub.id)
                hook = sub.delivery.webhook is not None
                hooks.append(hook)
                self._script(
                    keys=[
                        keys.subs,
                        keys.seen(sub.id, alert.alert_id),
                        stream,
                        state,
                        keys.outbox(sub.id),
                    ],
                    args=[
                        sub.id,
                        ttl,
                        maxlen,
                        stream if sub.delivery.pubsub else "",
                        body,
                        "1" if sub.delivery.stream else "0",
                        "1" if hook else "0",
                        sub.frequency,
                        (sub.cooldown_s or 0) * 1000,
                        ts_ms,
                        alert.subject,
                    ],
                    client=pipe,
                )
        if not hooks:
            return []
        results = [int(r) for r in pipe.execute()]
        stats = self.stats
        stats.delivered += results.count(DELIVERED)
        stats.duplicates += results.count(DUPLICATE)
        stats.suppressed += results.count(SUPPRESSED)
        stats.gone += results.count(GONE)
        stats.webhooks_queued += sum(
            1 for r, hook in zip(results, hooks, strict=True) if hook and r == DELIVERED
        )
        return results
