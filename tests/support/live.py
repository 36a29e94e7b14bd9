"""Watching the real stack until a condition holds, never for a fixed time.

- `Subscriber`: a PSUBSCRIBE client whose `sync()` proves every message published so far
  has arrived (a marker published after them has).
- `Drained`: whether the processor and the alerter have committed everything on their
  inputs (consumer lag 0, `services.runtime.lag.compute_lag`).
- `alert_ids`, `subscription_alert_ids`: the alert ids a Redis stream holds, in order.
- `lag_report`: where a pipeline that stopped short is stuck, for failure messages.
- `drop_namespace`: what a test or a benchmark leaves behind in Redis and Kafka.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import redis
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from schemas.pair_feed import PAIR_FEED_TOPIC
from services.runtime import redis_client
from services.runtime.lag import compute_lag
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from tests.support.wait import wait_for


class Subscriber:
    """PSUBSCRIBE on `pattern` in a thread, confirmed before the constructor returns."""

    def __init__(self, client: redis.Redis, pattern: str, marker: str) -> None:
        """`marker`: a channel `pattern` matches that nothing else publishes on."""
        self.client = client
        self.marker = marker
        self.pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        self.pubsub.psubscribe(pattern)
        wait_for(
            f"the psubscribe confirmation of {pattern}",
            lambda: (msg := self.pubsub.get_message(timeout=1.0)) and msg["type"] == "psubscribe",
            10,
            max_poll_s=0,  # get_message blocks up to a second itself
        )
        self.messages: list[tuple[str, bytes]] = []
        self._markers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            msg = self.pubsub.get_message(timeout=0.1)
            if msg is None or msg["type"] != "pmessage":
                continue
            channel = msg["channel"].decode()
            if channel == self.marker:
                self._markers += 1
            else:
                self.messages.append((channel, msg["data"]))

    def sync(self, timeout_s: float = 10.0) -> list[tuple[str, bytes]]:
        """Every message published before this call, as (channel, data).

        Redis runs commands one at a time and sends a subscriber its messages in that
        order, so once a marker published now has arrived, so has everything before it.
        """
        wanted = self._markers + 1
        self.client.publish(self.marker, b"sync")
        wait_for("the sync marker", lambda: self._markers >= wanted, timeout_s)
        return list(self.messages)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.pubsub.close()


class Drained:
    """Callable: True once everything on Kafka when it was first asked has reached Redis.

    A barrier in three steps, each a consumer group's committed offsets passing end
    offsets taken before: the processor's on the feed (ticks, history); then, from a
    snapshot taken after that, its own pair feed (the ticks it forwarded; the leader's
    heartbeats keep that topic growing, so its lag is rarely 0 at any one moment); then,
    from a snapshot taken after that, the alerter's on `signals`. The processor commits a
    record only after its outputs are acknowledged and the alerter only after the alert
    is in Redis, so once all three pass, nothing of the feed is still on its way.
    """

    def __init__(self, settings: Settings) -> None:
        s = self.s = settings
        self.admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
        )
        self.steps = [
            (s.processor_consumer_group, [s.ticks_topic, s.history_topic]),
            (s.processor_consumer_group, [s.topic(PAIR_FEED_TOPIC)]),
            (s.alerter_consumer_group, [s.signals_topic]),
        ]
        self.step = 0
        self.targets: dict[tuple[str, int], int] | None = None

    def __call__(self) -> bool:
        while self.step < len(self.steps):
            group, topics = self.steps[self.step]
            try:
                lags: Any = compute_lag(self.admin, self.consumer, group, topics)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                return False  # e.g. no group coordinator yet: ask again
            if not lags:
                return False
            if self.targets is None:
                self.targets = {(x.topic, x.partition): x.end for x in lags}
            done = all(
                (x.start if x.committed is None else x.committed)
                >= self.targets.get((x.topic, x.partition), 0)
                for x in lags
            )
            if not done:
                return False
            self.step, self.targets = self.step + 1, None
        return True

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


def lag_report(settings: Settings) -> str:
    """Each consumer group's committed and end offsets where they differ, one line per
    partition: where a pipeline that stopped short is stuck (for failure messages)."""
    s = settings
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False)
    lines = []
    try:
        groups = [
            (
                s.processor_consumer_group,
                [s.ticks_topic, s.history_topic, s.topic(PAIR_FEED_TOPIC)],
            ),
            (s.alerter_consumer_group, [s.signals_topic]),
        ]
        for group, topics in groups:
            for x in compute_lag(admin, consumer, group, topics):
                if x.lag:
                    lines.append(
                        f"{group} {x.topic}[{x.partition}]: committed {x.committed} "
                        f"end {x.end} (lag {x.lag})"
                    )
    except KafkaError as exc:
        lines.append(f"lags unknown: {exc!r}")
    finally:
        admin.close()
        consumer.close()
    return "\n".join(lines) or "every group committed up to its topics' ends"


def drop_namespace(settings: Settings, namespace: str, *, topics: bool = True) -> None:
    """Delete the namespace's Redis keys (in batches), ACL users and, with `topics`, topics."""
    client = redis_client.connect(settings)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=5000))
        for i in range(0, len(keys), 5000):
            client.delete(*keys[i : i + 5000])
        # Per-subscriber ACL users (docs/security.md) are named after the namespace too.
        users: Any = client.acl_users()
        for user in users:
            name = user.decode() if isinstance(user, bytes) else str(user)
            if name.startswith(namespace):
                client.acl_deluser(name)
    finally:
        client.close()
    if not topics:
        return
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        mine = [t for t in admin.list_topics() if t.startswith(namespace)]
        if mine:
            admin.delete_topics(mine)
    except KafkaError:
        pass  # tidying up must not turn a passing test red
    finally:
        admin.close()


def alert_ids(client: redis.Redis, stream: str) -> list[str]:
    """The `alert_id` of each alert in a Redis stream (the alerts' or a subscription's)."""
    entries: Any = client.xrange(stream)
    return [json.loads(fields[b"alert"])["alert_id"] for _id, fields in entries]


def subscription_alert_ids(client: redis.Redis, settings: Settings, sub_id: str) -> list[str]:
    return alert_ids(client, RedisKeys(settings.namespace).stream(sub_id))
