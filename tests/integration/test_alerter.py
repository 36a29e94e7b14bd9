"""`marketsignal alert` and `tail` against real Kafka and Redis: each alert delivered once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis

from schemas.alert import Alert, alert_id_for
from schemas.dead_letter import DeadLetter
from schemas.signals import IndexDivergence, RecordHigh
from services.alerter.relay import AlertStats
from services.alerter.service import relay_signals
from services.runtime.settings import Settings
from tests.support import factories, live
from tests.support.services import run_cli
from tests.support.stack import with_signals_topic
from tests.support.summary import summary_counts
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

HKT = timezone(timedelta(hours=8))
TAIL = [sys.executable, "-m", "services.cli", "tail"]
Signal = RecordHigh | IndexDivergence


def record_high(i: int) -> RecordHigh:
    return factories.record_high(
        f"S{i % 7}.HK",
        datetime(2026, 2, 13, 10, 0, tzinfo=HKT) + timedelta(seconds=i),
        401.0 + i,
        previous_high=400.0,
        previous_high_ts=datetime(2026, 2, 12, 15, 0, tzinfo=HKT),
    )


def divergence(i: int) -> IndexDivergence:
    return factories.divergence(
        datetime(2026, 2, 11, 10, 0, tzinfo=HKT) + timedelta(minutes=i),
        phase="open" if i % 2 == 0 else "close",
        return_b_pct=-2.1 - i,
    )


def signals(n: int) -> list[Signal]:
    return [divergence(i) if i % 5 == 4 else record_high(i) for i in range(n)]


def wire(items: list[Signal]) -> list[tuple[bytes | None, bytes]]:
    return [(s.subject.encode(), s.model_dump_json().encode()) for s in items]


def stream_ids(client: redis.Redis, s: Settings) -> list[str]:
    return live.alert_ids(client, s.redis_key("alerts"))


class Subscriber(live.Subscriber):
    """Every alert published in the namespace, each checked against its channel."""

    def __init__(self, client: redis.Redis, s: Settings) -> None:
        super().__init__(client, s.redis_key("alerts:*"), s.redis_key("alerts:marker:sync"))
        self.namespace = s.namespace

    def ids(self) -> list[str]:
        """The alert ids published so far (`sync`: none still in flight)."""
        ids = []
        for channel, data in self.sync():
            alert = Alert.model_validate_json(data)
            assert channel == f"{self.namespace}alerts:{alert.kind}:{alert.subject}"
            ids.append(alert.alert_id)
        return ids


@pytest.fixture
def subscriber_for(redis_client: redis.Redis) -> Iterator[Callable[[Settings], Subscriber]]:
    made: list[Subscriber] = []

    def make(s: Settings) -> Subscriber:
        made.append(Subscriber(redis_client, s))
        return made[-1]

    yield make
    for sub in made:
        sub.close()


def relay(s: Settings, idle_s: float = 1.5) -> AlertStats:
    return relay_signals(s, threading.Event(), idle_s)


def relayed(s: Settings, produce: Callable[..., None], items: list[Signal]) -> None:
    """`items` on the signals topic, then relayed until the alerter is idle."""
    produce(s.signals_topic, wire(items))
    relay(s)


def test_each_signal_delivered_once_and_replay_delivers_nothing(
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    produce: Callable[..., None],
    subscriber_for: Callable[[Settings], Subscriber],
    read_topic: Callable[..., list[Any]],
) -> None:
    s = with_signals_topic(settings())
    items = signals(20)
    expected = {alert_id_for(x) for x in items}
    sub = subscriber_for(s)
    # The same signal twice (a processor replay) and a value that is no signal at all.
    produce(s.signals_topic, [*wire(items), *wire(items[:1]), (b"x", b'{"kind": "nope"}')])

    stats = relay(s)

    assert (stats.consumed, stats.delivered, stats.duplicates, stats.invalid) == (22, 20, 1, 1)
    in_stream = stream_ids(redis_client, s)
    assert sorted(in_stream) == sorted(expected)
    assert sorted(sub.ids()) == sorted(expected)
    # One dedupe key per alert, named by its alert_id (not by the signal's JSON), each
    # expiring within the dedupe window.
    seen: Any = redis_client.keys(s.redis_key("alert:seen:*"))
    prefix = s.redis_key("alert:seen:").encode()
    assert {key.removeprefix(prefix).decode() for key in seen} == expected
    for key in seen:
        assert 0 < int(redis_client.ttl(key)) <= s.alert_dedupe_ttl_s

    # Replay: a new consumer group reads the topic from the start.
    dead = read_topic(s.signals_dlq_topic, expect=1)
    assert len(dead) == 1
    letter = DeadLetter.model_validate_json(dead[0].value)
    assert (letter.reason, letter.raw, dead[0].key) == ("malformed", '{"kind": "nope"}', b"x")
    assert letter.source.startswith(f"{s.signals_topic}[")

    again = relay(s.model_copy(update={"alerter_group": "replay"}))

    assert (again.consumed, again.delivered, again.duplicates) == (22, 0, 21)
    assert sorted(stream_ids(redis_client, s)) == sorted(expected)
    assert len(sub.ids()) == len(expected)


def _alerter(s: Settings, *args: str, batch: int = 500) -> subprocess.Popen[str]:
    env = factories.service_env(s, alerter_batch_max=batch, alerter_session_timeout_ms=6000)
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "alert", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_stream(client: redis.Redis, s: Settings, at_least: int, timeout_s: float) -> int:
    return wait_for(
        f"{at_least} alerts in the stream",
        lambda: (n := int(client.xlen(s.redis_key("alerts")))) >= at_least and n,
        timeout_s,
    )


@pytest.mark.parametrize("stop_with", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_restart_mid_way_neither_loses_nor_duplicates(
    stop_with: signal.Signals,
    settings: Callable[..., Settings],
    redis_client: redis.Redis,
    produce: Callable[..., None],
    subscriber_for: Callable[[Settings], Subscriber],
) -> None:
    s = with_signals_topic(settings())
    items = signals(3000)
    expected = sorted(alert_id_for(x) for x in items)
    sub = subscriber_for(s)
    produce(s.signals_topic, wire(items))

    # Small batches: many commit points, so the stop lands between two of them.
    first = _alerter(s, batch=5)
    try:
        _wait_for_stream(redis_client, s, 100, timeout_s=60)
        first.send_signal(stop_with)
        _out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    delivered_before = int(redis_client.xlen(s.redis_key("alerts")))
    assert delivered_before < len(items), "the first run finished: nothing was interrupted"
    if stop_with == signal.SIGTERM:
        assert first.returncode == 0, err
        counts = summary_counts(err, "alert:")
        # A clean stop reports what it did: every alert in the stream is its delivery.
        assert counts["delivered"] == delivered_before <= counts["consumed"]
    else:
        assert first.returncode == -signal.SIGKILL

    second = _alerter(s, "--idle-exit", "2")
    _out, err = second.communicate(timeout=120)

    assert second.returncode == 0, err
    assert sorted(stream_ids(redis_client, s)) == expected
    assert sorted(sub.ids()) == expected


def test_tail_from_start_then_live_prints_each_alert_once(
    settings: Callable[..., Settings],
    produce: Callable[..., None],
) -> None:
    s = with_signals_topic(settings())
    items = signals(10)
    relayed(s, produce, items[:6])
    env = factories.service_env(s)
    tail = subprocess.Popen(
        [*TAIL, "--from-start", "--json", "--count", "10", "--timeout", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        history = [tail.stdout.readline() for _ in range(6)]
        relayed(s, produce, items[6:])
        out, err = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, err
    lines = history + out.splitlines()
    printed = [json.loads(line)["alert_id"] for line in lines]
    assert sorted(printed[:6]) == sorted(alert_id_for(x) for x in items[:6])
    assert sorted(printed[6:]) == sorted(alert_id_for(x) for x in items[6:])


def test_tail_formats_lines_and_filters_by_pattern(
    settings: Callable[..., Settings],
    produce: Callable[..., None],
) -> None:
    s = with_signals_topic(settings())
    items = signals(10)
    relayed(s, produce, items)
    env = factories.service_env(s)
    done = run_cli(
        "tail",
        "--from-start",
        "--pattern",
        "alerts:index_divergence:*",
        "--timeout",
        "1",
        env=env,
        timeout_s=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert all("DIVERGENCE" in line and "000688.SH/HSTECH.HK" in line for line in lines)
