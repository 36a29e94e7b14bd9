"""The alerter's relay loop survives a broker outage seen by its consumer's poll.

The consumer and the delivery here are in-memory stand-ins for the relay's two
protocols: this checks the loop's own logic (retry, no commit past undelivered
signals, give up only on permanent errors). The real broker restart is the fault
suite's `test_broker_restart_mid_stream`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, cast

import pytest
import redis
from kafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from prometheus_client import CollectorRegistry

from schemas.alert import Alert
from schemas.signals import RecordHigh
from services.alerter.delivery import NotReplicated
from services.alerter.metrics import AlertMetrics
from services.alerter.relay import AlertRelay

HKT = timezone(timedelta(hours=8))


def signal_record(offset: int) -> SimpleNamespace:
    signal = RecordHigh(
        symbol="2513.HK",
        ts=datetime(2026, 2, 13, 10, 0, tzinfo=HKT) + timedelta(minutes=offset),
        price=400.0 + offset,
        window="all_time",
        previous_high=399.0 + offset,
        previous_high_ts=datetime(2026, 2, 12, 11, 0, tzinfo=HKT),
        change_pct=0.25,
    )
    return SimpleNamespace(
        topic="signals", partition=0, offset=offset, value=signal.model_dump_json().encode()
    )


class ScriptedConsumer:
    """poll() plays a script: a list of records is returned, an exception is raised."""

    def __init__(self, script: list[list[Any] | KafkaError], stop: threading.Event) -> None:
        self.script: Iterator[list[Any] | KafkaError] = iter(script)
        self.stop = stop
        self.commits: list[int] = []
        self.delivered_before_commit: list[int] = []
        self.kinds: list[str] = []
        self.polls = 0
        self.delivery: Recorder | None = None
        self.metrics: AlertMetrics | None = None
        self.readiness: list[tuple[bool, str]] = []
        self.commit_failures: list[KafkaError | None] = []  # async commits' outcomes

    # A fake KafkaConsumer.poll: the signature is the client's, the answer the test's.
    def poll(
        self,
        timeout_ms: int = 0,  # noqa: ARG002
        max_records: int | None = None,  # noqa: ARG002
    ) -> dict[Any, Any]:
        self.polls += 1
        if self.metrics is not None:
            self.readiness.append(self.metrics.ready())
        step = next(self.script, None)
        if step is None:
            self.stop.set()
            return {}
        if isinstance(step, KafkaError):
            raise step
        return {("signals", 0): step}

    def commit(self) -> None:
        assert self.delivery is not None
        self.commits.append(self.polls)
        self.delivered_before_commit.append(len(self.delivery.alerts))
        self.kinds.append("sync")

    def commit_async(self, offsets: Any = None, callback: Any = None) -> None:
        self.commit()
        self.kinds[-1] = "async"
        if callback is not None:
            # kafka-python calls back from a later poll; the outcome is the test's.
            failure = self.commit_failures.pop(0) if self.commit_failures else None
            callback(offsets, failure if failure is not None else {})

    def assignment(self) -> set[Any]:
        return {("signals", 0)}


class Recorder:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def deliver(self, alerts: list[Alert]) -> list[bool]:
        self.alerts.extend(alerts)
        return [True] * len(alerts)


def relay_for(
    script: list[list[Any] | KafkaError],
    *,
    commit_interval_s: float = 0.0,
    clock: Any = None,
) -> tuple[AlertRelay, ScriptedConsumer, Recorder, AlertMetrics, threading.Event]:
    stop = threading.Event()
    consumer = ScriptedConsumer(script, stop)
    delivery = Recorder()
    consumer.delivery = delivery
    metrics = AlertMetrics(CollectorRegistry())
    consumer.metrics = metrics
    relay = AlertRelay(
        consumer,
        delivery,
        metrics=metrics,
        now=lambda: datetime(2026, 2, 13, 8, 0, tzinfo=UTC),
        commit_interval_s=commit_interval_s,
        **({} if clock is None else {"clock": clock}),
    )
    return relay, consumer, delivery, metrics, stop


def test_commits_are_paced_by_the_interval_and_each_covers_delivered_alerts_only() -> None:
    # Batches at 0, 0.3, 0.6 and 1.2 s, an empty poll at 1.5 s, then another batch at
    # 3.0 s, with a 1 s interval.
    batches: list[list[Any] | KafkaError] = [[signal_record(i)] for i in range(6)]
    script = [*batches[:4], [], batches[4]]
    times = iter([0.0, 0.3, 0.6, 1.2, 1.5, 3.0])
    relay, consumer, delivery, _metrics, stop = relay_for(
        script, commit_interval_s=1.0, clock=lambda: next(times)
    )

    relay.run(stop)

    assert len(delivery.alerts) == 5
    # At once for the first batch; at 1.2 s for the three since; none at 1.5 s (nothing
    # new); at 3.0 s for the last; the stop's own commit, waited for, last.
    assert consumer.delivered_before_commit == [1, 4, 5, 5]
    assert consumer.kinds == ["async", "async", "async", "sync"]


def test_an_idle_poll_commits_what_the_interval_held_back() -> None:
    script: list[list[Any] | KafkaError] = [[signal_record(0)], [signal_record(1)], []]
    times = iter([0.0, 0.5, 1.1])
    relay, consumer, _delivery, _metrics, stop = relay_for(
        script, commit_interval_s=1.0, clock=lambda: next(times)
    )

    relay.run(stop)

    # The second batch waited; the empty poll 1.1 s after the first commit sent it.
    assert consumer.delivered_before_commit == [1, 2, 2]
    assert consumer.kinds == ["async", "async", "sync"]


def test_connection_errors_in_poll_are_retried_and_nothing_is_lost() -> None:
    first = [signal_record(0), signal_record(1)]
    second = [signal_record(2)]
    down = KafkaConnectionError("111 ECONNREFUSED")
    relay, consumer, delivery, metrics, stop = relay_for([first, down, down, second])

    stats = relay.run(stop)

    assert [a.subject for a in delivery.alerts] == ["2513.HK"] * 3
    assert [getattr(a.signal, "price", None) for a in delivery.alerts] == [400.0, 401.0, 402.0]
    assert stats.delivered == 3
    # One commit per delivered batch, each after its alerts were stored, not waited for;
    # then one waited for as the run stops, so a clean stop leaves nothing to replay.
    assert consumer.delivered_before_commit == [2, 3, 3]
    assert consumer.kinds == ["async", "async", "sync"]
    assert metrics.kafka_errors._value.get() == 2
    ready, reason = metrics.ready()
    assert ready, reason


def test_readiness_reports_the_outage_while_it_lasts() -> None:
    down = KafkaConnectionError("down")
    relay, consumer, _delivery, metrics, stop = relay_for([down, down, []])

    relay.run(stop)

    # Seen at each poll: ready, then not while polls fail, ready again after one succeeds.
    states = [ready for ready, _reason in consumer.readiness]
    assert states == [True, False, False, True]
    assert consumer.readiness[1][1].startswith("Kafka unavailable")
    assert metrics.ready()[0]


def test_permanent_kafka_errors_end_the_run() -> None:
    relay, _consumer, delivery, _metrics, stop = relay_for(
        [[signal_record(0)], TopicAuthorizationFailedError("signals")]
    )

    with pytest.raises(TopicAuthorizationFailedError):
        relay.run(stop)
    assert len(delivery.alerts) == 1


class DownRedis:
    """Redis refusing every delivery; the run is asked to stop at the first refusal."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.alerts: list[Alert] = []

    def deliver(self, alerts: list[Alert]) -> list[bool]:  # noqa: ARG002
        self.stop.set()
        raise redis.ConnectionError("Redis is restarting")


def test_a_stop_while_redis_is_down_commits_nothing() -> None:
    stop = threading.Event()
    consumer = ScriptedConsumer([[signal_record(0)]], stop)
    down = DownRedis(stop)
    consumer.delivery = cast(Recorder, down)
    relay = AlertRelay(consumer, down, metrics=AlertMetrics(CollectorRegistry()))

    stats = relay.run(stop)

    # The position is past a record Redis never took: committing it would lose it.
    assert consumer.commits == []
    assert stats.delivered == 0


def test_a_failed_commit_is_tried_again_when_next_due() -> None:
    """The last batch's commit failing (a broker restart) must not leave the group's
    offsets behind for good: the next idle poll commits again, once due."""
    script: list[list[Any] | KafkaError] = [[signal_record(0)], [], [], [], []]
    times = iter([0.0, 0.5, 1.2, 1.5, 2.6])
    relay, consumer, _delivery, _metrics, stop = relay_for(
        script, commit_interval_s=1.0, clock=lambda: next(times)
    )
    consumer.commit_failures = [CommitFailedError("coordinator loading"), None]
    relay.run(stop)
    # The batch at 0.0 s: its commit fails; 0.5 s: not due; 1.2 s: again, and it holds;
    # after that nothing is pending until the stop's own commit.
    assert consumer.commits == [1, 3, 6]
    assert consumer.kinds == ["async", "async", "sync"]
    assert relay.commit_outage.ongoing is False


class LaggingReplica:
    """The primary takes each batch, its replica confirms it only at the third attempt."""

    def __init__(self) -> None:
        self.attempts = 0
        self.claimed: set[str] = set()
        self.alerts: list[Alert] = []  # confirmed by the replica

    def deliver(self, alerts: list[Alert]) -> list[bool]:
        self.attempts += 1
        new = [a.alert_id not in self.claimed for a in alerts]
        self.claimed.update(a.alert_id for a in alerts)
        if self.attempts < 3:
            raise NotReplicated(new, 0, 1, 5)
        self.alerts.extend(alerts)
        return new


def test_no_commit_before_a_replica_confirms_and_the_alerts_count_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    consumer = ScriptedConsumer([[signal_record(0), signal_record(1)]], stop)
    lagging = LaggingReplica()
    consumer.delivery = cast(Recorder, lagging)
    relay = AlertRelay(consumer, lagging, metrics=AlertMetrics(CollectorRegistry()))

    with caplog.at_level("WARNING", logger="marketsignal.alerter"):
        stats = relay.run(stop)

    assert lagging.attempts == 3
    # Every commit came after the attempt the replica confirmed.
    assert consumer.delivered_before_commit
    assert min(consumer.delivered_before_commit) == 2
    # The retries found the alerts claimed by the first attempt: still new, not duplicates.
    assert (stats.delivered, stats.duplicates) == (2, 0)
    # One line when the replica falls short, one when it is back: not one per retry.
    lines = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in line for line in lines) == 1
    assert sum(" back after " in line for line in lines) == 1
