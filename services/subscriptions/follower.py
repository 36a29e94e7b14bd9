"""Following the registry from the alerter: its changes, applied to a live index.

The registry bumps `subs:version` and appends `{id, v}` to `subs:changes` in the same
atomic step as each change (services/subscriptions/registry.py), so a reader that saw
version N needs only the entries after N; one that fell behind the trimmed stream
reloads everything.
"""

from __future__ import annotations

from typing import Any

import redis

from schemas.subscription import Subscription
from services.runtime.redis_keys import RedisKeys
from services.subscriptions.matching import SubscriptionIndex
from services.subscriptions.registry import SubscriptionRegistry


class RegistryFollower:
    """Keeps up with the registry: which subscriptions changed since the last look."""

    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self.client = client
        self.keys = keys
        self.version = -1
        self._last_entry = "0-0"
        self.reloads = 0
        self.changes_applied = 0

    def poll(self) -> tuple[bool, dict[str, Subscription | None]]:
        """(full, subs): full=True: `subs` is everything; else the changed ids only
        (None: deleted). Nothing changed: (False, {})."""
        version = self.version_now()
        if version == self.version:
            return False, {}
        k = self.keys
        if self.version >= 0:
            entries: Any = self.client.xrange(k.changes, f"({self._last_entry}", "+")
            versions = [int(fields[b"v"]) for _id, fields in entries]
            expected = list(range(self.version + 1, self.version + 1 + len(versions)))
            if versions and versions == expected:
                ids = list(dict.fromkeys(fields[b"id"].decode() for _id, fields in entries))
                raw: Any = self.client.hmget(k.subs, ids)
                self._last_entry = entries[-1][0].decode()
                self.version = versions[-1]
                self.changes_applied += len(ids)
                return False, {
                    i: None if v is None else Subscription.model_validate_json(v)
                    for i, v in zip(ids, raw, strict=True)
                }
        # First look, or the stream no longer holds every change since ours: reload.
        last: Any = self.client.xrevrange(k.changes, count=1)
        everything: Any = self.client.hgetall(k.subs)
        self._last_entry = last[0][0].decode() if last else "0-0"
        self.version = int(last[0][1][b"v"]) if last else version
        self.reloads += 1
        return True, {
            key.decode(): Subscription.model_validate_json(v) for key, v in everything.items()
        }

    def version_now(self) -> int:
        raw: Any = self.client.get(self.keys.version)
        return 0 if raw is None else int(raw)


class LiveIndex:
    """The alerter's view: the index of the current subscriptions, changed incrementally."""

    def __init__(self, registry: SubscriptionRegistry) -> None:
        self.registry = registry
        self.follower = RegistryFollower(registry.client, registry.keys)
        self._index = SubscriptionIndex()

    def current(self) -> SubscriptionIndex:
        full, changed = self.follower.poll()
        if full:
            self._index = SubscriptionIndex(s for s in changed.values() if s is not None)
        else:
            for sub_id, sub in changed.items():
                if sub is None:
                    self._index.remove(sub_id)
                else:
                    self._index.add(sub)
        return self._index
