"""faust's Prometheus sensor, its per-event work moved to the offset commit.

faust calls its monitor's hooks for every message, stream event, table write and send;
its Prometheus sensor updates labelled metrics in each. `BatchSensor` keeps the
`faust_*` metrics the dashboards and alert rules read but counts per message in plain
Python and moves the counts to Prometheus at each offset commit. The per-event
histograms and per-send counters are dropped: the processor's own per-batch metrics
(services/processor/metrics.py) say what a batch cost.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import Any

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry


class BatchSensor(PrometheusMonitor):
    """Faust's Prometheus sensor without its per-event work.

    Rebalances, assignments, commits, send errors and committed offsets are reported as
    faust reports them; `faust_messages_received_total`, its per-topic split and
    `faust_topic_partition_end_offset` are exact but advance at each commit rather than
    with each message.
    """

    def __init__(self, metrics: FaustMetrics, **kwargs: Any) -> None:
        super().__init__(metrics, **kwargs)
        self._received: Tally[str] = Tally()

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self._received[tp.topic] += 1

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        # faust calls this for every message it fetches: the monitor's own mapping (its
        # lag view) is kept per message, the labelled gauge follows at each commit.
        self.tp_end_offsets[tp] = offset

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> Any:
        return self.time()  # the state on_send_error measures from

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None

    def on_tp_commit(self, tp_offsets: Any) -> None:
        super().on_tp_commit(tp_offsets)
        received, self._received = self._received, Tally()
        metrics = self._metrics
        for topic, n in received.items():
            metrics.messages_received.inc(n)
            metrics.messages_received_per_topics.labels(topic=topic).inc(n)
        for tp, offset in tp_offsets.items():
            metrics.messages_received_per_topics_partition.labels(
                topic=tp.topic, partition=tp.partition
            ).set(offset)
        for tp, end in self.tp_end_offsets.items():
            metrics.topic_partition_end_offset.labels(topic=tp.topic, partition=tp.partition).set(
                end
            )


def install_batch_sensor(app: faust.App, registry: CollectorRegistry) -> None:
    """Faust's metrics in `registry` under the fixed prefix `faust`, per batch; the fixed
    prefix keeps metric names independent of the namespace and app id."""
    app.monitor = BatchSensor(FaustMetrics.create(registry, "faust"))
