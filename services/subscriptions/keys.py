"""Every Redis name the subscriptions use (registry, streams, fan-out, webhooks)."""

from __future__ import annotations

from schemas.subscription import sub_stream
from services.runtime.settings import Settings


class SubscriptionKeys:
    """Every Redis name the subscriptions use, in one place."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.subs = settings.redis_key("subs")
        self.owners = settings.redis_key("subs:owner")
        self.order = settings.redis_key("subs:order")
        self.by_owner_prefix = settings.redis_key("subs:by:")
        self.version = settings.redis_key("subs:version")
        self.changes = settings.redis_key("subs:changes")
        self.fanout_queue = settings.redis_key("subs:fanout")
        self.fanout_lease = settings.redis_key("subs:fanout:lease")

    def by_owner(self, owner: str) -> str:
        return self.by_owner_prefix + owner

    def redis_user(self, sub_id: str) -> str:
        """The optional Redis ACL user of a subscriber (docs/security.md)."""
        return self.settings.redis_key(f"sub-{sub_id}")

    def fanout_done(self, alert_id: str) -> str:
        """Set once an alert was fanned out to every subscription it matched."""
        return self.settings.redis_key(f"fanout:done:{alert_id}")

    def stream(self, sub_id: str) -> str:
        """Durable delivery: `alerts:sub:{id}` (also the pub/sub channel's name)."""
        return self.settings.redis_key(sub_stream(sub_id))

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
