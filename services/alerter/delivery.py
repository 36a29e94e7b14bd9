"""Delivering alerts to Redis: the durable stream, the live channel, and the dedupe claim.

One Lua script does all three for an alert, so no crash can leave an alert claimed but
not in the stream (a replay would then skip it: lost). Given a `FanoutQueue`, the same
script also hands each new alert to the subscriptions (services/subscriptions/handoff.py),
atomically with the claim. Redis does not roll a script back when a command in it fails,
so the claim is written last, after the XADDs succeeded.

A private kind (a subscriber's own price level, `PRIVATE_KINDS`) is claimed and handed to
the subscriptions only: never added to the shared stream nor published on `alerts:*`,
which every reader sees. The fan-out delivers it to the subscription it names.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from schemas.alert import Alert
from schemas.signals import PRIVATE_KINDS
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.handoff import FanoutQueue

# KEYS: seen key, stream, and the fan-out queue if there is one.
# ARGV: ttl seconds, stream maxlen, channel ('' for a private alert: neither the shared
#       stream nor a channel), alert JSON, then with a queue its entry field.
# Returns 1 when delivered, 0 when the alert was already delivered.
DELIVER_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local shared = ARGV[3] ~= ''
if shared then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[4])
end
if #KEYS == 3 then
  redis.call('XADD', KEYS[3], '*', ARGV[5], ARGV[4])
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
if shared then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1
"""


# The mark's only use is its place in the replication stream; it expires on its own.
REPLICATED_MARK_TTL_MS = 3_600_000


class NotReplicated(redis.RedisError):
    """The batch is written on the primary, but fewer replicas than asked acknowledged it.

    `delivered` tells, as `deliver` would have, which alerts this attempt delivered: a
    retry finds them claimed, yet they were new (the relay keeps the first answer).
    """

    def __init__(self, delivered: list[bool], replicas: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"{replicas} of {wanted} replica(s) acknowledged the alerts within {timeout_ms} ms"
        )
        self.delivered = delivered


class RedisDelivery:
    """Delivers a batch of alerts in one round trip; tells which were new."""

    def __init__(
        self, client: redis.Redis, settings: Settings, *, queue: FanoutQueue | None = None
    ) -> None:
        """`queue`: where each new alert is handed to the subscriptions; None for none."""
        self.client = client
        self.settings = settings
        self.keys = RedisKeys(settings.namespace)
        self.queue = queue
        self._script = client.register_script(DELIVER_ONCE)

    def deliver(self, alerts: Sequence[Alert]) -> list[bool]:
        """True for each alert delivered now, False for each delivered before.

        Raises redis.RedisError if Redis fails; then some alerts of the batch may be
        delivered and the others not, and delivering the batch again is safe. With
        `redis_min_replicas`, NotReplicated (a RedisError) when too few replicas have the
        batch: delivered on the primary, not yet durable; deliver it again.
        """
        if not alerts:
            return []
        settings, keys = self.settings, self.keys
        queued = [] if self.queue is None else [self.queue.key]
        field = [] if self.queue is None else [self.queue.FIELD]
        # transaction=False: each script is atomic on its own; MULTI would add nothing.
        pipe = self.client.pipeline(transaction=False)
        for alert in alerts:
            self._script(
                keys=[keys.seen(alert.alert_id), keys.alerts, *queued],
                args=[
                    settings.alert_dedupe_ttl_s,
                    settings.alerts_stream_maxlen,
                    "" if alert.kind in PRIVATE_KINDS else keys.channel(alert.kind, alert.subject),
                    alert.model_dump_json(),
                    *field,
                ],
                client=pipe,
            )
        wanted = settings.redis_min_replicas
        if wanted:
            # Redis replicates asynchronously: without this, a failover to a replica that
            # missed the batch would lose alerts whose Kafka offsets were committed. WAIT
            # counts the replicas that acknowledged this connection's last write, so one
            # write comes first, always: a batch of replayed alerts writes nothing, and a
            # retry may get another connection, yet their alerts were written before, by
            # an earlier attempt or alerter. The replication stream is in order: a replica
            # that has this write has every write before it.
            pipe.set(keys.replicated, str(len(alerts)), px=REPLICATED_MARK_TTL_MS)
            pipe.wait(wanted, settings.redis_wait_timeout_ms)
        results = pipe.execute()
        delivered = [bool(result) for result in results[: len(alerts)]]
        if wanted and int(results[-1]) < wanted:
            raise NotReplicated(delivered, int(results[-1]), wanted, settings.redis_wait_timeout_ms)
        return delivered
