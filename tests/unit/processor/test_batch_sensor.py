"""`BatchSensor`: faust's per-message sensor work deferred to the offset commit."""

from __future__ import annotations

from faust.sensors.prometheus import FaustMetrics
from faust.types import TP
from prometheus_client import CollectorRegistry

from services.processor.faust_compat.sensor import BatchSensor


def sensor() -> tuple[BatchSensor, CollectorRegistry]:
    registry = CollectorRegistry()
    return BatchSensor(FaustMetrics.create(registry, "faust")), registry


def end_offset(registry: CollectorRegistry, tp: TP) -> float | None:
    return registry.get_sample_value(
        "faust_topic_partition_end_offset",
        {"topic": tp.topic, "partition": str(tp.partition)},
    )


def test_end_offsets_are_kept_per_message_and_exported_at_commit() -> None:
    monitor, registry = sensor()
    a, b = TP("ticks", 0), TP("ticks", 1)
    for offset in (10, 11, 12):
        monitor.track_tp_end_offset(a, offset)
    monitor.track_tp_end_offset(b, 7)

    assert monitor.tp_end_offsets == {a: 12, b: 7}  # faust's own lag view is per message
    assert end_offset(registry, a) is None  # no labelled gauge touched per message

    monitor.on_tp_commit({a: 12})
    assert end_offset(registry, a) == 12
    assert end_offset(registry, b) == 7

    monitor.track_tp_end_offset(a, 40)
    assert end_offset(registry, a) == 12
    monitor.on_tp_commit({a: 40})
    assert end_offset(registry, a) == 40


def test_messages_received_advance_at_commit() -> None:
    monitor, registry = sensor()
    tp = TP("ticks", 0)
    for offset in range(5):
        monitor.on_message_in(tp, offset, None)
    assert not registry.get_sample_value("faust_messages_received_total")

    monitor.on_tp_commit({tp: 5})
    assert registry.get_sample_value("faust_messages_received_total") == 5
    assert (
        registry.get_sample_value("faust_messages_received_per_topic_total", {"topic": "ticks"})
        == 5
    )
