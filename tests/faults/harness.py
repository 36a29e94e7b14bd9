"""Run the pipeline as a deployment would, break it, and hold the result to the backtest.

`Pipeline` starts real processor and alerter processes (static group members, as under
the supervisor), replays a tick file with the real ingestor, and offers the faults:
kill -9 or SIGTERM of a service, and a restart of Kafka or Redis through
deploy/local/stack.sh. `outcome()` waits until everything the feed caused is processed
and delivered (committed offsets, not sleeps), then counts missing, extra and
duplicated alerts against the backtest. `recovery_s()` measures, from the Redis stream's
entry times, how long after a fault the next alert arrived.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from schemas.alert import alert_id_for
from schemas.pair_feed import PAIR_FEED_TOPIC
from schemas.signals import SIGNAL_ADAPTER
from schemas.subscription import SubscriptionSpec
from services.runtime.lag import compute_lag
from services.runtime.settings import Settings
from services.subscriptions.keys import SubscriptionKeys
from services.subscriptions.registry import SubscriptionRegistry
from tests.e2e.services import ROOT, Service, free_port, service_env, wait_for
from tests.faults.components import Fault, Outcome, backtest


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        ticks: Path,
        rules: Path,
        logs: Path,
        client: redis.Redis,
    ) -> None:
        self.s = settings
        self.ticks = ticks
        self.rules = rules
        self.logs = logs
        self.client = client
        self.env = service_env(settings, rules)
        found = backtest(ticks, rules)
        self.expected = [(i, subject) for i, subject, _ in found]
        self._expected_json = [(i, text) for i, _, text in found]
        self.processors: dict[str, Service] = {}
        self.alerter: Service | None = None
        self.feed: subprocess.Popen[bytes] | None = None
        self.faults: list[Fault] = []
        self._runs: Counter[str] = Counter()
        self._ports: dict[str, int] = {}
        self.stream = settings.redis_key("alerts")
        self.group = settings.processor_consumer_group
        self.alerter_group = settings.alerter_consumer_group
        # A catch-all subscription: its own stream must hold every alert once too.
        self.subscription, _ = SubscriptionRegistry(client, settings).create(
            SubscriptionSpec.model_validate({"name": "faults"})
        )
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
        self.admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)

    # -- services ----------------------------------------------------------------------

    def services(self) -> list[Service]:
        return [*self.processors.values(), *([self.alerter] if self.alerter else [])]

    def _log_name(self, name: str) -> str:
        self._runs[name] += 1
        return f"{name}.{self._runs[name]}"

    def start_processor(self, instance: str) -> Service:
        env = {**self.env, "MARKETSIGNAL_PROCESSOR_INSTANCE_ID": instance}
        # Same instance, same web port, as under the supervisor: Faust's assignor refuses
        # an assignment made for another URL, and a static member that rejoins gets the
        # assignment made for its previous self.
        port = self._ports.setdefault(instance, free_port())
        svc = Service(
            self._log_name(instance), ["process", "--web-port", str(port)], env, self.logs
        )
        self.processors[instance] = svc
        return svc

    def start_alerter(self) -> Service:
        env = {**self.env, "MARKETSIGNAL_ALERTER_INSTANCE_ID": "alerter-1"}
        self.alerter = Service(self._log_name("alerter"), ["alert", "--no-api"], env, self.logs)
        return self.alerter

    def start_feed(self, rate: int) -> None:
        self.feed = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "ingest", str(self.ticks), "--rate", str(rate)],
            cwd=ROOT,
            env=self.env,
            stdout=(self.logs / "ingest.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def feed_running(self) -> bool:
        return self.feed is not None and self.feed.poll() is None

    def stop_all(self) -> None:
        if self.feed is not None and self.feed.poll() is None:
            self.feed.kill()
            self.feed.wait()
        for svc in self.services():
            svc.stop()
        self.consumer.close()
        self.admin.close()

    # -- observations ------------------------------------------------------------------

    def signal_ends(self) -> dict[int, int]:
        parts = self.consumer.partitions_for_topic(self.s.signals_topic) or set()
        tps = [TopicPartition(self.s.signals_topic, p) for p in sorted(parts)]
        return {tp.partition: off for tp, off in self.consumer.end_offsets(tps).items()}

    def owned_partitions(self, instance: str) -> set[int]:
        """Partitions of `ticks` and of the pair feed that worker `instance` holds."""
        mine: set[int] = set()

        def stable() -> bool:
            desc = self.admin.describe_groups([self.group])[self.group]
            if desc["group_state"] != "Stable":
                return False  # assignments are only readable in a stable group
            pair_topic = self.s.topic(PAIR_FEED_TOPIC)
            for member in desc["members"]:
                # A static member's id is its group.instance.id, a dash and a UUID.
                if not str(member["member_id"]).startswith(f"{instance}-"):
                    continue
                for a in member["member_assignment"]["assigned_partitions"]:
                    if a["topic"] in (self.s.ticks_topic, pair_topic):
                        mine.update(a["partitions"])
            return bool(mine)

        wait_for(f"the partitions of {instance}", stable, 60, self.services())
        return mine

    def stream_len(self) -> int:
        return int(self.client.xlen(self.stream))

    def wait_alerts(self, at_least: int, timeout_s: float = 120) -> None:
        wait_for(
            f"{at_least} alerts in {self.stream}",
            lambda: self.stream_len() >= at_least,
            timeout_s,
            self.services(),
        )

    def wait_new_signals(self, fault: Fault, timeout_s: float = 60) -> None:
        """Until a signal lands past the fault's end offsets on its partitions."""

        def produced() -> bool:
            ends = self.signal_ends()
            parts = fault.partitions if fault.partitions is not None else set(ends)
            return any(ends.get(p, 0) > fault.ends.get(p, 0) for p in parts)

        wait_for(f"signals after {fault.what}", produced, timeout_s, self.services())

    # -- faults ------------------------------------------------------------------------

    def kill_processor(self, instance: str, sig: int = signal.SIGKILL) -> Fault:
        parts = self.owned_partitions(instance) if len(self.processors) > 1 else None
        svc = self.processors[instance]
        at = time.time()
        svc.stop(sig, timeout_s=30)
        fault = Fault(f"processor {instance} {signal.Signals(sig).name}", at, parts)
        fault.ends = self.signal_ends()
        self.faults.append(fault)
        return fault

    def kill_alerter(self, sig: int = signal.SIGKILL) -> Fault:
        assert self.alerter is not None
        at = time.time()
        self.alerter.stop(sig, timeout_s=30)
        fault = Fault(f"alerter {signal.Signals(sig).name}", at)
        fault.ends = self.signal_ends()
        self.faults.append(fault)
        return fault

    # -- the verdict -------------------------------------------------------------------

    def settle(self, timeout_s: float = 240) -> None:
        """Wait until every tick is processed and every signal delivered (committed)."""
        assert self.feed is not None
        deadline = time.monotonic() + timeout_s
        while self.feed.poll() is None:
            assert time.monotonic() < deadline, "the feed did not finish"
            time.sleep(0.5)
        assert self.feed.returncode == 0, (self.logs / "ingest.log").read_text()[-2000:]

        def caught_up(group: str, topics: list[str]) -> bool:
            lags = compute_lag(self.admin, self.consumer, group, topics)
            return bool(lags) and all(x.lag == 0 for x in lags if x.topic != pair_topic)

        pair_topic = self.s.topic(PAIR_FEED_TOPIC)
        wait_for(
            "the processors to commit every tick",
            lambda: caught_up(self.group, [self.s.ticks_topic]),
            timeout_s,
            self.services(),
        )
        # The pair feed never rests (leader heartbeats): its records up to now must be
        # committed, which covers every tick forwarded before.
        pair_ends = self._ends(pair_topic)
        wait_for(
            "the processors to commit the pair feed",
            lambda: self._committed(self.group, pair_topic, pair_ends),
            timeout_s,
            self.services(),
        )
        signal_ends = self._ends(self.s.signals_topic)
        wait_for(
            "the alerter to commit every signal",
            lambda: self._committed(self.alerter_group, self.s.signals_topic, signal_ends),
            timeout_s,
            self.services(),
        )

    def _ends(self, topic: str) -> dict[int, int]:
        parts = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        return {tp.partition: off for tp, off in self.consumer.end_offsets(tps).items()}

    def _committed(self, group: str, topic: str, ends: dict[int, int]) -> bool:
        got = self.admin.list_group_offsets(group).get(group, {})
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
        sub = Counter(
            i for _, i in self.stream_entries(SubscriptionKeys(self.s).stream(self.subscription.id))
        )
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
            deadline = time.monotonic() + 60
            while any(reader.position(tp) < ends[tp] for tp in tps):
                assert time.monotonic() < deadline, "could not read the signals topic"
                for tp, records in reader.poll(timeout_ms=200).items():
                    for r in records:
                        try:
                            sig = SIGNAL_ADAPTER.validate_json(r.value)
                        except ValueError:
                            continue  # poison written by a test, not a signal
                        out[tp.partition].append((r.offset, (alert_id_for(sig), r.value.decode())))
            return out
        finally:
            reader.close()
