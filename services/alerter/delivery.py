"""Delivering alerts to Redis: the durable stream, the live channel, and the dedupe claim.

One Lua script does all three for an alert, so no crash can leave an alert claimed but
not in the stream (a replay would then skip it: lost). With `fanout=True` the same
script also queues the alert for the subscriptions (`subs:fanout`, read by
services/subscriptions/fanout.py's worker off the Kafka loop), atomically with the claim.
Redis does not roll a script back when a command in it fails, so the claim is written
last, after the XADDs succeeded.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from schemas.alert import Alert
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings

# KEYS: seen key, stream, fan-out queue.  ARGV: ttl seconds, stream maxlen, channel,
# alert JSON, '1' to queue the alert for the subscriptions' fan-out.
# Returns 1 when delivered, 0 when the alert was already delivered.
DELIVER_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[4])
if ARGV[5] == '1' then
  redis.call('XADD', KEYS[3], '*', 'alert', ARGV[4])
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""


class RedisDelivery:
    """Delivers a batch of alerts in one round trip; tells which were new."""

    def __init__(self, client: redis.Redis, settings: Settings, *, fanout: bool = False) -> None:
        self.client = client
        self.settings = settings
        self.keys = RedisKeys(settings.namespace)
        self.fanout = "1" if fanout else "0"
        self._script = client.register_script(DELIVER_ONCE)

    def deliver(self, alerts: Sequence[Alert]) -> list[bool]:
        """True for each alert delivered now, False for each delivered before.

        Raises redis.RedisError if Redis fails; then some alerts of the batch may be
        delivered and the others not, and delivering the batch again is safe.
        """
        if not alerts:
            return []
        settings, keys = self.settings, self.keys
        # transaction=False: each script is atomic on its own; MULTI would add nothing.
        pipe = self.client.pipeline(transaction=False)
        for alert in alerts:
            self._script(
                keys=[keys.seen(alert.alert_id), keys.alerts, keys.fanout_queue],
                args=[
                    settings.alert_dedupe_ttl_s,
                    settings.alerts_stream_maxlen,
                    keys.channel(alert.kind, alert.subject),
                    alert.model_dump_json(),
                    self.fanout,
                ],
                client=pipe,
            )
        return [bool(result) for result in pipe.execute()]
