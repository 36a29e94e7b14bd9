"""What the fault suite reads back from Kafka and Redis to judge a run.

`Ledger` knows the backtest's alerts and the faults struck, and reads the signals topic,
the committed offsets and the Redis streams: `outcome()` counts missing, extra and
duplicated alerts against the backtest, `recovery_s()` measures, from the Redis stream's
entry times, how long after a fault the next new alert arrived.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from schemas.alert import alert_id_for
from schemas.signals import SIGNAL_ADAPTER
from schemas.subscription import SubscriptionSpec
from services.runtime.redis_keys import RedisKeys
from services.runtime.settings import Settings
from services.subscriptions.registry import SubscriptionRegistry
from tests.faults.components import Fault, Outcome, backtest
from tests.support.wait import wait_for


class Ledger:
    def __init__(self, settings: Settings, ticks: Path, rules: Path, client: redis.Redis) -> None:
        self.s = settings
        self.client = client
        found = backtest(ticks, rules)
        self.expected = [(i, subject) for i, subject, _ in found]
        self._expected_json = [(i, text) for i, _, text in found]
        self.faults: list[Fault] = []
        self.stream = settings.redis_key("alerts")
        # A catch-all subscription: its own stream must hold every alert once too.
        self.subscription, _ = SubscriptionRegistry(client, settings).create(
            SubscriptionSpec.model_validate({"name": "faults"})
        )
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
        self.admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()

    def signal_ends(self) -> dict[int, int]:
        return self._ends(self.s.signals_topic)

    def stream_len(self) -> int:
        return int(self.client.xlen(self.stream))

    def _ends(self, topic: str) -> dict[int, int]:
        parts = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        return {tp.partition: off for tp, off in self.consumer.end_offsets(tps).items()}

    def _committed(self, group: str, topic: str, ends: dict[int, int]) -> bool:
        try:
            got = self.admin.list_group_offsets(group).get(group, {})
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return False  # a restarted broker's coordinator still loading: not yet
        offsets = {tp.partition: meta.offset for tp, meta in got.items() if tp.topic == topic}
        return all(offsets.get(p, 0) >= end for p, end in ends.items() if end > 0)

    def stream_entries(self, key: str) -> list[tuple[float, str]]:
        """(entry time in epoch s, alert_id) of every entry of a Redis stream."""
        out = []
        for entry_id, fields in self.client.xrange(key, "-", "+"):
            ms = int(entry_id.split(b"-")[0])
            out.append((ms / 1000, json.loads(fields[b"alert"])["alert_id"]))
        return out

    def outcome(self) -> Outcome:
        want = Counter(i for i, _ in self.expected)
        entries = self.stream_entries(self.stream)
        got = Counter(i for _, i in entries)
        subject = dict(self.expected)
        # Per subject, the stream keeps the backtest's order.
        order_kept = True
        for name in set(subject.values()):
            mine = [i for _, i in entries if subject.get(i) == name]
            order_kept &= list(dict.fromkeys(mine)) == [i for i, s in self.expected if s == name]
        stream = RedisKeys(self.s.namespace).stream(self.subscription.id)
        sub = Counter(i for _, i in self.stream_entries(stream))
        return Outcome(
            expected=len(self.expected),
            delivered=len(entries),
            missing=sum((want - got).values()),
            extra=sum(n for i, n in got.items() if i not in want),
            duplicates=sum(n - 1 for n in got.values() if n > 1),
            order_kept=order_kept,
            subscription_missing=sum((want - sub).values()),
            subscription_extra=sum(n for i, n in sub.items() if i not in want),
            subscription_duplicates=sum(n - 1 for n in sub.values() if n > 1),
            details=self._details(want, got),
        )

    def _details(self, want: Counter[str], got: Counter[str]) -> list[str]:
        if want == got:
            return []
        signals: dict[str, str] = {}
        for p, values in self._signals_by_partition().items():
            for off, (i, text) in values:
                signals.setdefault(i, f"signals[{p}]@{off} {text}")
        lines = [f"missing: {text}" for i, text in self._expected_json if i in (want - got)]
        lines += [f"extra: {signals.get(i, i)}" for i in got if i not in want]
        lines += [f"fault: {f.what} at {f.at:.3f} partitions {f.partitions}" for f in self.faults]
        return lines

    def recovery_s(self, fault: Fault) -> float:
        """From the fault to the first alert whose signal was first produced after it.

        Alerts re-sent by a replay (already delivered before the fault) do not count:
        the first *new* alert is the one a subscriber was waiting for.
        """
        first_new: set[str] = set()
        for p, values in self._signals_by_partition().items():
            if fault.partitions is not None and p not in fault.partitions:
                continue
            before = {v for off, (v, _) in values if off < fault.ends.get(p, 0)}
            first_new.update(v for off, (v, _) in values if off >= fault.ends.get(p, 0))
            first_new -= before
        times = [t for t, i in self.stream_entries(self.stream) if i in first_new and t > fault.at]
        assert times, f"no alert after {fault.what}"
        return min(times) - fault.at

    def _signals_by_partition(self) -> dict[int, list[tuple[int, tuple[str, str]]]]:
        topic = self.s.signals_topic
        tps = [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic))]
        reader = KafkaConsumer(bootstrap_servers=self.s.kafka_bootstrap, group_id=None)
        try:
            reader.assign(tps)
            reader.seek_to_beginning(*tps)
            ends = reader.end_offsets(tps)
            out: dict[int, list[tuple[int, tuple[str, str]]]] = {tp.partition: [] for tp in tps}

            def read_to_end() -> bool:
                if all(reader.position(tp) >= ends[tp] for tp in tps):
                    return True
                for tp, records in reader.poll(timeout_ms=200).items():
                    for r in records:
                        try:
                            sig = SIGNAL_ADAPTER.validate_json(r.value)
                        except ValueError:
                            continue  # poison written by a test, not a signal
                        out[tp.partition].append((r.offset, (alert_id_for(sig), r.value.decode())))
                return False

            # poll() blocks up to 200 ms itself: no sleep between reads.
            wait_for("the whole signals topic", read_to_end, 60, max_poll_s=0)
            return out
        finally:
            reader.close()
