"""The subscription registry in Redis, changed at runtime, seen by the alerter at once.

Keys (each prefixed with the namespace):
- `subs`: hash, subscription id -> Subscription JSON
- `subs:secret`: hash, id -> webhook HMAC secret (never in the JSON, never listed)
- `subs:version`: integer, incremented by every create, update and delete in the same
  atomic step as the change.

The alerter reads `subs:version` before matching each batch (one GET) and reloads the
hash only when it moved, so a change is in effect for the very next batch: no restart,
no notification that could be missed while disconnected. Delivery scripts also check
that the subscription still exists, so a delete takes effect even for a batch already
matched.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from schemas.subscription import Subscription, SubscriptionSpec, is_subscription_id, sub_stream
from services.alerter.matching import SubscriptionIndex
from services.settings import Settings

# KEYS: subs, secrets, version.  ARGV: id, JSON, secret ('' keeps the old one).
# Returns 1 if written, 0 if ARGV[4] == 'update' and the id does not exist.
_PUT = """
if ARGV[4] == 'update' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
redis.call('INCR', KEYS[3])
return 1
"""

# KEYS: subs, secrets, version, then the subscription's own keys to drop.  ARGV: id.
_DELETE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
for i = 4, #KEYS do
  redis.call('DEL', KEYS[i])
end
redis.call('INCR', KEYS[3])
return 1
"""


class SubscriptionKeys:
    """Every Redis name the subscriptions use, in one place."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.subs = settings.redis_key("subs")
        self.secrets = settings.redis_key("subs:secret")
        self.version = settings.redis_key("subs:version")

    def stream(self, sub_id: str) -> str:
        """Durable delivery: `alerts:sub:{id}` (also the pub/sub channel's name)."""
        return self.settings.redis_key(sub_stream(sub_id))

    def seen(self, sub_id: str, alert_id: str) -> str:
        return self.settings.redis_key(f"sub:{sub_id}:seen:{alert_id}")

    def day(self, sub_id: str, subject: str, day: str) -> str:
        return self.settings.redis_key(f"sub:{sub_id}:day:{subject}:{day}")

    def last(self, sub_id: str) -> str:
        """Cooldown state: hash subject -> event time (epoch ms) of the last delivery."""
        return self.settings.redis_key(f"sub:{sub_id}:last")

    def outbox(self, sub_id: str) -> str:
        """Webhook deliveries not yet acknowledged by the receiver."""
        return self.settings.redis_key(f"sub:{sub_id}:outbox")

    def webhook_dead(self, sub_id: str) -> str:
        """Webhook deliveries that failed every attempt (kept for inspection)."""
        return self.settings.redis_key(f"sub:{sub_id}:webhook:failed")

    def webhook_failures(self, sub_id: str) -> str:
        """Failed webhook attempts of the subscription (a counter)."""
        return self.settings.redis_key(f"sub:{sub_id}:webhook:failures")

    def owned(self, sub_id: str) -> list[str]:
        return [
            self.stream(sub_id),
            self.last(sub_id),
            self.outbox(sub_id),
            self.webhook_dead(sub_id),
            self.webhook_failures(sub_id),
        ]


class SubscriptionRegistry:
    """Create, read, update, delete subscriptions. Synchronous; safe from any thread."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.keys = SubscriptionKeys(settings)
        self.now = now
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)

    def create(self, spec: SubscriptionSpec) -> tuple[Subscription, str]:
        """The new subscription and its webhook secret (returned here only)."""
        now = self.now()
        sub = Subscription(
            **spec.model_dump(), id=uuid.uuid4().hex[:16], created_at=now, updated_at=now
        )
        secret = secrets.token_hex(32)
        k = self.keys
        self._put(
            keys=[k.subs, k.secrets, k.version],
            args=[sub.id, sub.model_dump_json(), secret, "create"],
        )
        return sub, secret

    def update(self, sub_id: str, spec: SubscriptionSpec) -> Subscription | None:
        old = self.get(sub_id)
        if old is None:
            return None
        sub = Subscription(
            **spec.model_dump(), id=sub_id, created_at=old.created_at, updated_at=self.now()
        )
        k = self.keys
        done = self._put(
            keys=[k.subs, k.secrets, k.version],
            args=[sub.id, sub.model_dump_json(), "", "update"],
        )
        return sub if done else None

    def delete(self, sub_id: str) -> bool:
        if not is_subscription_id(sub_id):
            return False
        k = self.keys
        done = self._delete(keys=[k.subs, k.secrets, k.version, *k.owned(sub_id)], args=[sub_id])
        return bool(done)

    def get(self, sub_id: str) -> Subscription | None:
        if not is_subscription_id(sub_id):
            return None
        raw: Any = self.client.hget(self.keys.subs, sub_id)
        return None if raw is None else Subscription.model_validate_json(raw)

    def list_all(self) -> list[Subscription]:
        raw: Any = self.client.hgetall(self.keys.subs)
        subs = [Subscription.model_validate_json(v) for v in raw.values()]
        return sorted(subs, key=lambda s: (s.created_at, s.id))

    def secret(self, sub_id: str) -> str | None:
        raw: Any = self.client.hget(self.keys.secrets, sub_id)
        return None if raw is None else bytes(raw).decode()

    def version(self) -> int:
        raw: Any = self.client.get(self.keys.version)
        return 0 if raw is None else int(raw)

    def recent(self, sub_id: str, count: int) -> list[bytes]:
        """The newest `count` alerts of the subscription's stream, oldest first."""
        entries: Any = self.client.xrevrange(self.keys.stream(sub_id), count=count)
        return [fields[b"alert"] for _id, fields in reversed(entries) if b"alert" in fields]


class LiveIndex:
    """The alerter's view: the index of the current subscriptions, rebuilt on change."""

    def __init__(self, registry: SubscriptionRegistry) -> None:
        self.registry = registry
        self._version = -1
        self._index = SubscriptionIndex()
        self.reloads = 0

    def current(self) -> SubscriptionIndex:
        version = self.registry.version()  # read before the data: a racing change re-reloads
        if version != self._version:
            self._index = SubscriptionIndex(self.registry.list_all())
            self._version = version
            self.reloads += 1
        return self._index
