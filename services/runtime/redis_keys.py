"""Every Redis key and channel name marketsignal uses, each with the namespace prefix.

The one place these names are spelled. Python callers use them directly; Lua scripts get
them as KEYS (or, for a channel, ARGV) and never build a name themselves, so a name
changes here or nowhere. The names are part of running deployments (subscribers read
`alerts:sub:{id}`, restarts find their state under the same keys): they do not change.
"""

from __future__ import annotations

from schemas.subscription import sub_stream
from schemas.topics import ALERTS_STREAM, alert_channel


class RedisKeys:
    """The names of one namespace (`Settings.namespace`, "" for none)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        p = namespace
        # The alerter's shared delivery.
        self.alerts = p + ALERTS_STREAM
        # The subscription registry.
        self.subs = p + "subs"
        self.owners = p + "subs:owner"
        self.order = p + "subs:order"
        self.by_owner_prefix = p + "subs:by:"
        self.version = p + "subs:version"
        self.changes = p + "subs:changes"
        # Plain-text webhook secrets of an earlier version; deleted when adopted.
        self.legacy_secrets = p + "subs:secret"
        # Subscribers' price levels (services/subscriptions/levels.py): every level's
        # JSON by id, and the subscriptions that have any (the expiry sweep's list).
        self.levels = p + "levels"
        self.level_subs = p + "levels:subs"
        # The hand-off from the alerter to the subscriptions' fan-out.
        self.fanout_queue = p + "subs:fanout"
        self.fanout_lease = p + "subs:fanout:lease"
        # Written after each delivered batch when replicas must confirm it (the alerter's
        # WAIT, services/alerter/delivery.py): a write puts every earlier one behind it.
        self.replicated = p + "alert:replicated"
        self._sub_prefix = p + "sub:"

    # -- the alerter's shared delivery

    def seen(self, alert_id: str) -> str:
        """The dedupe claim: exists once the alert was delivered."""
        return f"{self.namespace}alert:seen:{alert_id}"

    def channel(self, kind: str, subject: str) -> str:
        """The live pub/sub channel of an alert (a channel, not a key)."""
        return self.namespace + alert_channel(kind, subject)

    # -- subscriptions

    def by_owner(self, owner: str) -> str:
        return self.by_owner_prefix + owner

    def fanout_done(self, alert_id: str) -> str:
        """Set once an alert was fanned out to every subscription it matched."""
        return f"{self.namespace}fanout:done:{alert_id}"

    def redis_user(self, sub_id: str) -> str:
        """The optional Redis ACL user of a subscriber (docs/security.md)."""
        return f"{self.namespace}sub-{sub_id}"

    def stream(self, sub_id: str) -> str:
        """Durable delivery: `alerts:sub:{id}` (also the pub/sub channel's name)."""
        return self.namespace + sub_stream(sub_id)

    def day(self, sub_id: str, subject: str, day: str) -> str:
        """once_per_day state: exists once the subject was delivered that local day."""
        return f"{self._sub_prefix}{sub_id}:day:{subject}:{day}"

    def last(self, sub_id: str) -> str:
        """Cooldown state: hash subject -> event time (epoch ms) of the last delivery."""
        return f"{self._sub_prefix}{sub_id}:last"

    def outbox(self, sub_id: str) -> str:
        """Webhook deliveries not yet acknowledged by the receiver."""
        return f"{self._sub_prefix}{sub_id}:outbox"

    def webhook_dead(self, sub_id: str) -> str:
        """Webhook deliveries that failed every attempt (kept for inspection)."""
        return f"{self._sub_prefix}{sub_id}:webhook:failed"

    def webhook_failures(self, sub_id: str) -> str:
        """Failed webhook attempts of the subscription (a counter)."""
        return f"{self._sub_prefix}{sub_id}:webhook:failures"

    def sub_levels(self, sub_id: str) -> str:
        """The ids of one subscription's levels: a sorted set, score 0 (pages by id)."""
        return f"{self._sub_prefix}{sub_id}:levels"

    def owned(self, sub_id: str) -> list[str]:
        """What deleting the subscription drops with it."""
        return [
            self.stream(sub_id),
            self.last(sub_id),
            self.outbox(sub_id),
            self.webhook_dead(sub_id),
            self.webhook_failures(sub_id),
        ]
