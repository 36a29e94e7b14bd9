"""Subscribers' own price levels: kept in Redis for the API, published to Kafka for the
processor (docs/subscriptions.md, "Price levels").

Two homes, each for its reader:
- the compacted `levels` topic, keyed by level id: what the processor arms (a level) and
  disarms (a tombstone). It is the truth the stream runs on, so no level is armed that
  was not published, and none is disarmed without a tombstone.
- Redis, for listing and limits (keys: services/runtime/redis_keys.py): `levels` (id ->
  Level JSON), `sub:{id}:levels` (the subscription's ids, paged by id like the
  registry's) and `levels:subs` (the subscriptions that have any, for the expiry sweep).

Order of the two writes, so that a failure between them never leaves a level armed that
the API no longer shows: a create reserves the level in Redis (one script: the
subscription exists and is the caller's, both limits hold), then publishes it and waits
for the broker's acks; if that fails the reservation is undone and the caller gets an
error. A delete publishes the tombstone first and only then forgets the level in Redis,
so a delete that fails half-way is retried by deleting again (tombstones are idempotent).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import redis
from kafka import KafkaProducer

from schemas.level import Level, LevelSpec
from schemas.subscription import Subscription, is_subscription_id
from services.runtime.kafka_admin import durable_producer, ensure_levels_topic
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings

log = logging.getLogger("marketsignal.levels")

# How long a create or delete waits for the broker's acks before giving up (an error).
PUBLISH_TIMEOUT_S = 10.0

# KEYS: subscription owners hash, levels hash, the subscription's level ids, levels:subs.
# ARGV: subscription id, required owner ('' = any), level id, level JSON, per-subscription
#       limit, deployment limit.
# Returns 1 when reserved; 0 no such subscription (or another owner's); -1 the
# subscription's limit; -2 the deployment's.
_RESERVE = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if not owner or (ARGV[2] ~= '' and owner ~= ARGV[2]) then
  return 0
end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then
  return -1
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[6]) then
  return -2
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
redis.call('SADD', KEYS[4], ARGV[1])
return 1
"""

# KEYS: levels hash, the subscription's level ids, levels:subs.  ARGV: subscription id,
# then the level ids to forget.
_FORGET = """
for i = 2, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[1])
end
return 1
"""


class Refused(Enum):
    """Why a level was not created."""

    NO_SUBSCRIPTION = 0
    SUBSCRIPTION_FULL = -1
    DEPLOYMENT_FULL = -2


class LevelStore:
    """Create, list and delete levels. Synchronous; `close()` ends the Kafka producer.

    `owner`: None acts as an administrator (any subscription); a string restricts the
    call to that owner's subscriptions (others' are as if absent), as the registry does.
    """

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.settings = settings
        self.keys = RedisKeys(settings.namespace)
        self.now = now
        self._producer: KafkaProducer | None = None
        self._reserve = client.register_script(_RESERVE)
        self._forget = client.register_script(_FORGET)

    # -- Kafka ----------------------------------------------------------------------------

    def _publish(self, records: list[tuple[str, Level | None]]) -> None:
        """Write each (level id, level or tombstone) and wait for the broker's acks."""
        if self._producer is None:
            ensure_levels_topic(self.settings)
            self._producer = durable_producer(self.settings, "levels")
        topic = self.settings.levels_topic
        futures = [
            self._producer.send(
                topic,
                key=level_id.encode(),
                value=None if level is None else level.model_dump_json().encode(),
            )
            for level_id, level in records
        ]
        for future in futures:
            future.get(timeout=PUBLISH_TIMEOUT_S)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

    # -- the API's steps ------------------------------------------------------------------

    def create(self, sub_id: str, spec: LevelSpec, owner: str | None = None) -> Level | Refused:
        """The new level, armed once this returns; or why not. Raises on a Kafka or Redis
        failure, after which the level does not exist."""
        if not is_subscription_id(sub_id):
            return Refused.NO_SUBSCRIPTION
        level = Level(
            **spec.model_dump(),
            level_id=uuid.uuid4().hex[:16],
            subscription_id=sub_id,
            created_at=self.now(),
        )
        k, s = self.keys, self.settings
        code = int(
            self._reserve(
                keys=[k.owners, k.levels, k.sub_levels(sub_id), k.level_subs],
                args=[
                    sub_id,
                    owner or "",
                    level.level_id,
                    level.model_dump_json(),
                    s.levels_per_subscription,
                    s.levels_max,
                ],
            )
        )
        if code != 1:
            return Refused(code)
        try:
            self._publish([(level.level_id, level)])
        except Exception:
            # Not armed, so not kept: the caller sees an error, the list no such level.
            self._forget_ids(sub_id, [level.level_id])
            raise
        return level

    def page(
        self, sub_id: str, after: str = "", limit: int = 100
    ) -> tuple[list[Level], str | None]:
        """Up to `limit` of the subscription's levels in id order after `after`; the next
        cursor. The caller checks that the subscription is the caller's."""
        start = f"({after}" if after else "-"
        ids: Any = self.client.zrangebylex(
            self.keys.sub_levels(sub_id), start, "+", start=0, num=limit + 1
        )
        more = len(ids) > limit
        ids = ids[:limit]
        raw: Any = self.client.hmget(self.keys.levels, ids) if ids else []
        levels = [Level.model_validate_json(v) for v in raw if v is not None]
        return levels, (ids[-1].decode() if more and ids else None)

    def get(self, sub_id: str, level_id: str) -> Level | None:
        raw: Any = self.client.hget(self.keys.levels, level_id)
        if raw is None:
            return None
        level = Level.model_validate_json(raw)
        return level if level.subscription_id == sub_id else None

    def replace(self, sub_id: str, level_id: str, spec: LevelSpec) -> Level | None:
        """Change a level of the subscription (symbol, side, price, note), keeping its id:
        the new record re-arms it in place. None if the subscription has no such level.
        Published first: a failure leaves both homes as they were, or (Redis failing
        after the broker took it) the new level armed and the old one listed until the
        change is repeated."""
        old = self.get(sub_id, level_id)
        if old is None:
            return None
        level = Level(
            **spec.model_dump(),
            level_id=level_id,
            subscription_id=sub_id,
            created_at=old.created_at,
        )
        self._publish([(level_id, level)])
        self.client.hset(self.keys.levels, level_id, level.model_dump_json())
        return level

    def delete(self, sub_id: str, level_id: str) -> bool:
        """Disarm and forget one level of the subscription; False if it has none such.
        The caller checks that the subscription is the caller's."""
        if self.get(sub_id, level_id) is None:
            return False
        self._publish([(level_id, None)])
        self._forget_ids(sub_id, [level_id])
        return True

    def disarm_subscription(self, sub_id: str) -> int:
        """Disarm and forget every level of a subscription (deleted or expired): how many."""
        ids = [i.decode() for i in self.client.zrange(self.keys.sub_levels(sub_id), 0, -1)]  # type: ignore[union-attr]
        if ids:
            self._publish([(level_id, None) for level_id in ids])
        self._forget_ids(sub_id, ids)
        return len(ids)

    def count(self) -> int:
        """Levels in the whole deployment."""
        raw: Any = self.client.hlen(self.keys.levels)
        return int(raw)

    def sweep(self, subscriptions: Callable[[list[str]], list[Subscription | None]]) -> int:
        """Disarm the levels of every subscription that is gone or expired; how many.

        `subscriptions`: the subscriptions of these ids (None for a deleted one).
        """
        ids = sorted(i.decode() for i in self.client.smembers(self.keys.level_subs))  # type: ignore[union-attr]
        if not ids:
            return 0
        now = self.now()
        done = 0
        for sub_id, sub in zip(ids, subscriptions(ids), strict=True):
            if sub is None or sub.expired(now):
                done += self.disarm_subscription(sub_id)
        return done

    def _forget_ids(self, sub_id: str, level_ids: list[str]) -> None:
        k = self.keys
        self._forget(keys=[k.levels, k.sub_levels(sub_id), k.level_subs], args=[sub_id, *level_ids])
