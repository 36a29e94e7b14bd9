"""Run the pipeline as a deployment would, break it, and hold the result to the backtest.

`Pipeline` starts real processor and alerter processes (static group members, as under
the supervisor), replays a tick file with the real ingestor, and offers the faults:
kill -9 or SIGTERM of a service (a restart of Kafka or Redis is in components.py).
`settle()` waits until everything the feed caused is processed and delivered (committed
offsets, not sleeps); what is read back to judge the run is the `Ledger`'s
(tests/faults/ledger.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis
from kafka.errors import KafkaError

from schemas.pair_feed import PAIR_FEED_TOPIC
from services.runtime.lag import compute_lag
from services.runtime.settings import Settings
from tests.faults.components import Fault
from tests.faults.ledger import Ledger
from tests.support.services import ROOT, Service, free_port, service_env
from tests.support.wait import wait_for


class Pipeline(Ledger):
    def __init__(
        self,
        settings: Settings,
        ticks: Path,
        rules: Path,
        logs: Path,
        client: redis.Redis,
    ) -> None:
        super().__init__(settings, ticks, rules, client)
        self.ticks = ticks
        self.rules = rules
        self.logs = logs
        self.env = service_env(settings, rules)
        self.processors: dict[str, Service] = {}
        self.alerter: Service | None = None
        self.feed: subprocess.Popen[bytes] | None = None
        self._runs: Counter[str] = Counter()
        self._ports: dict[str, int] = {}
        self.group = settings.processor_consumer_group
        self.alerter_group = settings.alerter_consumer_group

    # -- services -------------------------------------------------------------------------

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
        self.close()

    # -- waiting --------------------------------------------------------------------------

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

    # -- faults ---------------------------------------------------------------------------

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

    # -- settling -------------------------------------------------------------------------

    def settle(self, timeout_s: float = 240) -> None:
        """Wait until every tick is processed and every signal delivered (committed)."""
        assert self.feed is not None
        feed = self.feed
        wait_for(
            "the feed to finish",
            lambda: feed.poll() is not None,
            timeout_s,
            self.services(),
            max_poll_s=0.5,
        )
        assert self.feed.returncode == 0, (self.logs / "ingest.log").read_text()[-2000:]

        def caught_up(group: str, topics: list[str]) -> bool:
            try:
                lags = compute_lag(self.admin, self.consumer, group, topics)
            except KafkaError as exc:
                # Right after a broker restart its group coordinator may still be loading
                # (NotCoordinator, CoordinatorLoadInProgress): not caught up yet.
                if not exc.retriable:
                    raise
                return False
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
