"""Poison records on every topic the services read: each dead-lettered with its reason,
no service crashes, and the alerts stay exact against the backtest."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from kafka import KafkaProducer

from schemas.dead_letter import DeadLetter
from schemas.pair_feed import PAIR_FEED_TOPIC
from schemas.tick_bundle import partition_of
from services.detection.rules import Rules
from tests.faults.scenario import RATE, Report, check, fault_pipeline
from tests.support.stack import SettingsFactory, read_all

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


def test_poison_records_are_dead_lettered_and_nothing_crashes(
    settings: SettingsFactory, redis_client: redis.Redis, tmp_path: Path, report: Report
) -> None:
    pipe = fault_pipeline(settings, redis_client, tmp_path, 40)
    s, rules = pipe.s, pipe.rules
    pair = Rules.load(rules).divergence[0].name
    huge = b'{"symbol":"S01.HK","pad":"' + b"x" * 900_000 + b'"}'
    home = partition_of("S01.HK", s.partitions)
    tick = b'{"symbol":"S01.HK","ts":"2026-01-05T09:30:00+08:00","price":10.0}'
    # (key, value) or (key, value, partition): bundles name their partition.
    poison: dict[str, list[tuple[bytes | None, bytes] | tuple[bytes | None, bytes, int]]] = {
        s.ticks_topic: [
            (b"S01.HK", b"\xff\xfe not json"),
            (b"S01.HK", b'{"symbol":"S01.HK","ts":"2026-01-05T09:30:00+08:00","price":"high"}'),
            (b"S01.HK", b'{"symbol":"S01.HK","ts":"2026-01-05T09:30:00+08:00","price":1e999}'),
            (b"S01.HK", huge),
            (b"S01.HK", b""),
            (None, b"[]", home),  # an empty bundle
            (None, b"[" + tick.replace(b"10.0", b'"high"') + b"]", home),  # its one tick bad
            (
                None,
                b"[" + tick + b"," + tick + b"]",
                (home + 1) % s.partitions,
            ),  # off its partition
        ],
        s.topic(PAIR_FEED_TOPIC): [
            (pair.encode(), b"not json"),
            (pair.encode(), b'{"type":"tick","symbol":1,"ts_us":"x","price":1}'),
            (pair.encode(), b'{"type":"tick","symbol":"S01.HK","ts_us":1,"price":1e999}'),
            (pair.encode(), huge),
            (pair.encode(), b"[]"),
            (pair.encode(), b'[{"type":"tick","symbol":1}]'),
        ],
        s.signals_topic: [
            (b"S01.HK", b"not json"),
            (b"S01.HK", b'{"kind":"record_high","symbol":5}'),
            (b"S01.HK", b'{"kind":"record_high","symbol":"S01.HK","price":1e999}'),
            (b"S01.HK", huge),
        ],
    }
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    try:
        pipe.start_processor("worker-1")
        pipe.start_alerter()
        pipe.start_feed(RATE)
        pipe.wait_alerts(1)
        for topic, records in poison.items():
            for key, value, *where in records:
                producer.send(topic, key=key, value=value, partition=where[0] if where else None)
        producer.flush(timeout=30)
        check(pipe, report)
        assert all(svc.alive() for svc in pipe.services()), "a service crashed on poison"
    finally:
        producer.close()
        pipe.stop_all()
    ticks_dlq = [DeadLetter.model_validate_json(r.value) for r in read_all(s, s.dlq_topic)]
    signals_dlq = [
        DeadLetter.model_validate_json(r.value) for r in read_all(s, s.signals_dlq_topic)
    ]
    from_ticks = [d for d in ticks_dlq if d.source.startswith(f"{s.ticks_topic}[")]
    from_pairs = [d for d in ticks_dlq if d.source.startswith(f"{s.topic(PAIR_FEED_TOPIC)}[")]
    counts = {
        "ticks": (len(poison[s.ticks_topic]), len(from_ticks)),  # one per bundle too
        "by_pair": (len(poison[s.topic(PAIR_FEED_TOPIC)]), len(from_pairs)),
        "signals": (len(poison[s.signals_topic]), len(signals_dlq)),
    }
    for name, (sent, dead) in counts.items():
        report(f"{name}: {sent} poison records written, {dead} dead-lettered")
    assert all(sent == dead for sent, dead in counts.values()), counts
    assert len(ticks_dlq) == len(from_ticks) + len(from_pairs)
    # The bundle whose one tick is bad: that tick's own dead letter, at index 0.
    assert any(d.source.endswith("#0") and d.field == "price" for d in from_ticks), from_ticks
    assert any("must hash to its partition" in d.detail for d in from_ticks), from_ticks
    for d in [*ticks_dlq, *signals_dlq]:
        assert d.reason == "malformed", d
        assert d.detail, d
        assert len(d.raw) < 70_000  # quoted, not copied whole
