"""The subscription registry in Redis, changed at runtime, seen by the alerter at once.

Keys (each prefixed with the namespace):
- `subs`: hash, subscription id -> Subscription JSON (its `owner` included)
- `subs:owner`: hash, id -> owner (checked by the scripts that change a subscription)
- `subs:order`: sorted set of every id; `subs:by:{owner}`: the ids of one owner. Both
  score 0, so ZRANGEBYLEX pages through them in id order with a cursor.
- `subs:version`: integer, incremented by every create, update and delete in the same
  atomic step as the change, which also appends `{id, v}` to the stream `subs:changes`.

The alerter reads `subs:version` before matching (one GET); when it moved, it reads the
changes since its own version and applies them to its index one subscription at a time
(a full reload only if the change stream was trimmed past it). A change is in effect
for the very next alert: no restart, no notification that could be missed while
disconnected. Delivery scripts also check that the subscription still exists, so a
delete takes effect even for an alert already matched.

No webhook secret is stored: each is derived from the alerter's key and the id
(services/subscriptions/secrets.py), so whoever can read Redis cannot sign as the alerter.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from schemas.subscription import Subscription, SubscriptionSpec, is_subscription_id
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.secrets import WebhookSecrets

# Changes kept for incremental readers; one further behind reloads everything.
CHANGES_MAXLEN = 10_000
PAGE_DEFAULT, PAGE_MAX = 100, 1000
# Recent alerts (`recent_page`): alerts a page, and the shape of the entry id that pages them.
RECENT_DEFAULT, RECENT_MAX = 50, 1000
ENTRY_ID_PATTERN = r"^[0-9]{1,20}-[0-9]{1,20}$"

# KEYS: subs, owners, order, by-owner set, version, changes.
# ARGV: id, JSON, owner, mode ('create' | 'update'), required owner ('' = any), maxlen.
# Returns 1 if written, 0 if an update finds no such id (or not the required owner's).
_PUT = """
if ARGV[4] == 'update' then
  local owner = redis.call('HGET', KEYS[2], ARGV[1])
  if not owner or (ARGV[5] ~= '' and owner ~= ARGV[5]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] == 'create' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  redis.call('ZADD', KEYS[4], 0, ARGV[1])
end
local v = redis.call('INCR', KEYS[5])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], '*', 'id', ARGV[1], 'v', v)
return 1
"""

# KEYS: subs, owners, order, version, changes, by-owner prefix as KEYS[6], then the
# subscription's own keys to drop.  ARGV: id, required owner ('' = any), maxlen.
_DELETE = """
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if not owner or (ARGV[2] ~= '' and owner ~= ARGV[2]) then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[6] .. owner, ARGV[1])
for i = 7, #KEYS do
  redis.call('DEL', KEYS[i])
end
local v = redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'id', ARGV[1], 'v', v)
return 1
"""


# KEYS: subs, owners, order, by-owner set of 'cli', legacy secrets hash.
# Subscriptions written before owners existed become the CLI's (admin-managed), and the
# plain-text secrets those versions kept are deleted. Returns how many were adopted.
_ADOPT = """
local adopted = 0
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    redis.call('HSET', KEYS[2], id, 'cli')
    redis.call('ZADD', KEYS[3], 0, id)
    redis.call('ZADD', KEYS[4], 0, id)
    adopted = adopted + 1
  end
end
redis.call('DEL', KEYS[5])
return adopted
"""


class SubscriptionRegistry:
    """Create, read, update, delete subscriptions. Synchronous; safe from any thread.

    `owner` arguments: None acts as an administrator (every subscription); a string
    restricts the call to that owner's subscriptions (others' are as if absent).
    """

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        webhook_secrets: WebhookSecrets | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.keys = RedisKeys(settings.namespace)
        self.now = now
        self._secrets = webhook_secrets
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)
        self._adopt = client.register_script(_ADOPT)

    def adopt_legacy(self) -> int:
        """Bring a registry of an earlier version up to date (owners, paging, no stored
        secrets); run by the alerter at start. Idempotent."""
        k = self.keys
        return int(
            self._adopt(keys=[k.subs, k.owners, k.order, k.by_owner("cli"), k.legacy_secrets])
        )

    @property
    def secrets(self) -> WebhookSecrets:
        if self._secrets is None:
            self._secrets = WebhookSecrets.load(self.settings)
        return self._secrets

    def create(self, spec: SubscriptionSpec, owner: str = "cli") -> tuple[Subscription, str]:
        """The new subscription and its webhook secret (returned here only)."""
        now = self.now()
        sub = Subscription(
            **spec.model_dump(),
            id=uuid.uuid4().hex[:16],
            owner=owner,
            created_at=now,
            updated_at=now,
        )
        k = self.keys
        self._put(
            keys=[k.subs, k.owners, k.order, k.by_owner(owner), k.version, k.changes],
            args=[sub.id, sub.model_dump_json(), owner, "create", "", CHANGES_MAXLEN],
        )
        return sub, self.secrets.secret(sub.id)

    def update(
        self, sub_id: str, spec: SubscriptionSpec, owner: str | None = None
    ) -> Subscription | None:
        old = self.get(sub_id, owner)
        if old is None:
            return None
        sub = Subscription(
            **spec.model_dump(),
            id=sub_id,
            owner=old.owner,
            created_at=old.created_at,
            updated_at=self.now(),
        )
        k = self.keys
        done = self._put(
            keys=[k.subs, k.owners, k.order, k.by_owner(old.owner), k.version, k.changes],
            args=[sub.id, sub.model_dump_json(), old.owner, "update", owner or "", CHANGES_MAXLEN],
        )
        return sub if done else None

    def delete(self, sub_id: str, owner: str | None = None) -> bool:
        if not is_subscription_id(sub_id):
            return False
        k = self.keys
        done = self._delete(
            keys=[
                *(k.subs, k.owners, k.order, k.version, k.changes, k.by_owner_prefix),
                *k.owned(sub_id),
            ],
            args=[sub_id, owner or "", CHANGES_MAXLEN],
        )
        if done:
            # ACL commands cannot run in a script; a user left by a crash here can read
            # only a stream that no longer exists.
            with contextlib.suppress(redis.ResponseError):
                self.client.acl_deluser(k.redis_user(sub_id))
        return bool(done)

    def get(self, sub_id: str, owner: str | None = None) -> Subscription | None:
        if not is_subscription_id(sub_id):
            return None
        raw: Any = self.client.hget(self.keys.subs, sub_id)
        if raw is None:
            return None
        sub = Subscription.model_validate_json(raw)
        return sub if owner is None or sub.owner == owner else None

    def many(self, sub_ids: list[str]) -> list[Subscription | None]:
        """The subscriptions of these ids, in that order (None for each that is gone)."""
        raw: Any = self.client.hmget(self.keys.subs, sub_ids) if sub_ids else []
        return [None if v is None else Subscription.model_validate_json(v) for v in raw]

    def page(
        self, owner: str | None = None, after: str = "", limit: int = PAGE_DEFAULT
    ) -> tuple[list[Subscription], str | None]:
        """Up to `limit` subscriptions in id order after the id `after`; the next cursor."""
        k = self.keys
        order = k.order if owner is None else k.by_owner(owner)
        start = f"({after}" if after else "-"
        ids: Any = self.client.zrangebylex(order, start, "+", start=0, num=limit + 1)
        more = len(ids) > limit
        ids = ids[:limit]
        raw: Any = self.client.hmget(k.subs, ids) if ids else []
        subs = [Subscription.model_validate_json(v) for v in raw if v is not None]
        return subs, (ids[-1].decode() if more and ids else None)

    def list_all(self) -> list[Subscription]:
        raw: Any = self.client.hgetall(self.keys.subs)
        subs = [Subscription.model_validate_json(v) for v in raw.values()]
        return sorted(subs, key=lambda s: (s.created_at, s.id))

    def secret(self, sub_id: str) -> str:
        return self.secrets.secret(sub_id)

    def version(self) -> int:
        raw: Any = self.client.get(self.keys.version)
        return 0 if raw is None else int(raw)

    def recent_page(
        self, sub_id: str, count: int, before: str = ""
    ) -> tuple[list[bytes], str | None]:
        """The newest `count` alerts older than entry `before`, oldest first; the cursor
        of the page before this one (None at the start of the stream)."""
        top = f"({before}" if before else "+"
        entries: Any = self.client.xrevrange(self.keys.stream(sub_id), top, "-", count=count + 1)
        more = len(entries) > count
        entries = entries[:count]
        alerts = [fields[b"alert"] for _id, fields in reversed(entries) if b"alert" in fields]
        return alerts, (entries[-1][0].decode() if more and entries else None)

    def grant_redis_user(self, sub_id: str, owner: str | None = None) -> tuple[str, str] | None:
        """A Redis user that can read only this subscription's stream and channel.

        Returns (user, password), or None for an unknown subscription. The password is
        new at each call (the previous one stops working) and is not stored anywhere:
        Redis keeps only its SHA-256.
        """
        if self.get(sub_id, owner) is None:
            return None
        k = self.keys
        user, password = k.redis_user(sub_id), secrets.token_hex(32)
        # ACL key and channel patterns are globs: a namespace's own `*?[]` must not widen it.
        stream = re.sub(r"([*?\[\]\\])", r"\\\1", k.stream(sub_id))
        self.client.acl_setuser(
            user,
            enabled=True,
            reset=True,
            passwords=[f"+{password}"],
            keys=[stream],
            channels=[stream],
            commands=[
                "-@all",
                "+ping",
                "+hello",
                "+auth",
                "+client|setname",
                "+xread",
                "+xrange",
                "+xrevrange",
                "+xlen",
                "+xreadgroup",
                "+xack",
                "+xgroup|create",
                "+xinfo|stream",
                "+subscribe",
                "+unsubscribe",
            ],
        )
        return user, password
