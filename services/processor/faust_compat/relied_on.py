"""Every name of faust's, mode's or aiokafka's that this package relies on beyond their
documented API, with the signature it was written against (faust-streaming 0.15.3,
mode-streaming 0.7.1, aiokafka 0.14.0).

tests/unit/processor/test_faust_compat.py checks each against the installed packages and fails
naming the one that is gone or changed; it also fails when a module here uses a private
name not declared below. An upgrade starts there.
"""

from __future__ import annotations

from dataclasses import dataclass

CONSUMER = "faust.transport.drivers.aiokafka:Consumer"
CONSUMER_THREAD = "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread"
MONITOR = "faust.sensors.prometheus:PrometheusMonitor"
FETCHER = "aiokafka.consumer.fetcher:Fetcher"


@dataclass(frozen=True)
class Reliance:
    """One name in `owner` (`module:Class`, or a module): a method whose parameters
    after `self` are `params`, or an attribute (`params` None) that the class's own
    source sets or reads. `caller` (`module:Class.method`), when given, must still use
    the name: an override that faust no longer calls would be dropped silently."""

    owner: str
    name: str
    params: tuple[str, ...] | None
    why: str
    caller: str | None = None

    def __str__(self) -> str:
        return f"{self.owner}.{self.name}"


RELIED_ON: tuple[Reliance, ...] = (
    # consumer.py: the commit rules
    Reliance(
        CONSUMER,
        "_new_offset",
        ("tp",),
        "replaced: the offset a commit may reach",
        f"{CONSUMER}._filter_committable_offsets",
    ),
    Reliance(
        CONSUMER,
        "_add_gap",
        ("tp", "offset_from", "offset_to"),
        "replaced: a jump in fetched offsets is not counted as acked",
        f"{CONSUMER}._drain_messages",
    ),
    Reliance(CONSUMER, "ack", ("message",), "overridden: only processed messages count"),
    Reliance(CONSUMER, "_committed_offset", None, "read: where a partition's commit stands"),
    Reliance(CONSUMER, "_acked", None, "read: acked offsets per partition"),
    Reliance(CONSUMER, "_paused_partitions", None, "read: partitions faust paused"),
    Reliance(CONSUMER, "_buffered_partitions", None, "read: partitions held for a full queue"),
    Reliance(
        CONSUMER,
        "_get_active_partitions",
        (),
        "called: the partitions faust's fetch loop asks for",
        f"{CONSUMER}._wait_next_records",
    ),
    Reliance(
        CONSUMER,
        "_read_offset",
        None,
        "read: the last offset the fetch loop delivered (a stalled partition's test)",
        f"{CONSUMER}._drain_messages",
    ),
    Reliance(CONSUMER, "_acked_index", None, "read: the same offsets as a set"),
    Reliance(CONSUMER, "_unacked_messages", None, "written by ack: a skipped message settled"),
    Reliance(CONSUMER, "_waiting_for_ack", None, "notified by ack: wait_empty wakes up"),
    Reliance("faust.types.tuples", "ack_lock", None, "held by ack, as faust's own ack does"),
    Reliance("mode.utils.futures", "notify", None, "wakes wait_empty, as faust's ack does"),
    # consumer.py: the seek and the fetch wait
    Reliance(
        CONSUMER,
        "_seek",
        ("partition", "offset"),
        "replaced: the seek runs in the consumer's thread",
        f"{CONSUMER}.seek",
    ),
    Reliance(CONSUMER, "_thread", None, "read by _seek: the consumer's thread"),
    Reliance(CONSUMER_THREAD, "seek", ("partition", "offset"), "called in the thread"),
    Reliance(
        CONSUMER_THREAD,
        "_ensure_consumer",
        (),
        "called: the aiokafka consumer, whose committed() is asked in the thread",
    ),
    Reliance(CONSUMER_THREAD, "call_thread", ("fun", "args", "kwargs"), "runs the seek"),
    Reliance(
        CONSUMER,
        "_new_consumer_thread",
        (),
        "replaced: builds ShortFetchWaitThread",
        "faust.transport.consumer:ThreadDelegateConsumer.__init__",
    ),
    Reliance(
        CONSUMER_THREAD,
        "_create_worker_consumer",
        ("transport",),
        "extended: sets the aiokafka consumer's fetch wait",
        f"{CONSUMER_THREAD}._create_consumer",
    ),
    Reliance(
        "aiokafka.consumer.consumer:AIOKafkaConsumer",
        "_fetch_max_wait_ms",
        None,
        "set before start(), which builds the fetcher from it",
        "aiokafka.consumer.consumer:AIOKafkaConsumer.start",
    ),
    Reliance(
        CONSUMER_THREAD,
        "on_start",
        (),
        "extended: the started aiokafka consumer's fetcher gets the adaptive fetch wait",
    ),
    Reliance(CONSUMER_THREAD, "_consumer", None, "read after start: the aiokafka consumer"),
    Reliance(
        "aiokafka.consumer.consumer:AIOKafkaConsumer",
        "_fetcher",
        None,
        "read after start(): the fetcher whose wait adapts",
        "aiokafka.consumer.consumer:AIOKafkaConsumer.start",
    ),
    Reliance(
        FETCHER,
        "_get_actions_per_node",
        ("assignment",),
        "wrapped: sets the wait before each round of fetch requests is built",
        f"{FETCHER}._fetch_requests_routine",
    ),
    Reliance(FETCHER, "_records", None, "read: fetched records not yet consumed"),
    Reliance(
        FETCHER,
        "_fetch_max_wait_ms",
        None,
        "set before each round: read by _get_actions_per_node into each FetchRequest",
        f"{FETCHER}._get_actions_per_node",
    ),
    # producer.py
    Reliance(
        "faust.transport.drivers.aiokafka:Producer",
        "_ensure_producer",
        (),
        "called: the aiokafka producer, for its batch API",
    ),
    Reliance(
        "aiokafka.producer.producer:AIOKafkaProducer",
        "_partition",
        ("topic", "partition", "key", "value", "serialized_key", "serialized_value"),
        "called: the partition send would choose for a key, for a batch's records",
        "aiokafka.producer.producer:AIOKafkaProducer.send",
    ),
    Reliance(
        "faust.transport.drivers.aiokafka:Producer",
        "_settings_extra",
        (),
        "extended: acks=all and idempotence outside transactions",
        "faust.transport.drivers.aiokafka:Producer._new_producer",
    ),
    # changelog.py
    Reliance(
        "faust.tables.table:Table",
        "_new_changelog_topic",
        ("retention", "compacting", "deleting"),
        "called: the changelog topic rebuilt with the raw key codec",
    ),
    # sensor.py: every hook BatchSensor overrides, and the metrics it writes
    Reliance(MONITOR, "__init__", ("metrics", "kwargs"), "extended: the per-topic counts"),
    Reliance(MONITOR, "_metrics", None, "read at commit: faust's Prometheus metrics"),
    Reliance(MONITOR, "tp_end_offsets", None, "written per message, exported at commit"),
    Reliance(MONITOR, "on_message_in", ("tp", "offset", "message"), "overridden"),
    Reliance(MONITOR, "on_stream_event_in", ("tp", "offset", "stream", "event"), "overridden"),
    Reliance(
        MONITOR, "on_stream_event_out", ("tp", "offset", "stream", "event", "state"), "overridden"
    ),
    Reliance(MONITOR, "on_message_out", ("tp", "offset", "message"), "overridden"),
    Reliance(MONITOR, "track_tp_end_offset", ("tp", "offset"), "overridden"),
    Reliance(MONITOR, "on_table_get", ("table", "key"), "overridden"),
    Reliance(MONITOR, "on_table_set", ("table", "key", "value"), "overridden"),
    Reliance(
        MONITOR,
        "on_send_initiated",
        ("producer", "topic", "message", "keysize", "valsize"),
        "overridden",
    ),
    Reliance(MONITOR, "on_send_completed", ("producer", "state", "metadata"), "overridden"),
    Reliance(MONITOR, "on_tp_commit", ("tp_offsets",), "extended: exports the counts"),
    # shutdown.py
    Reliance(
        "faust.worker:Worker",
        "_schedule_shutdown",
        ("signal",),
        "extended: starts the hard-exit deadline",
        # faust's own _on_sigterm flags the stop and calls this one
        "mode.worker:Worker._on_sigterm",
    ),
    Reliance(
        "faust.worker:Worker",
        "on_setup_root_logger",
        ("logger", "level"),
        "extended: the client libraries' repeated lines counted on faust's handlers",
        # mode's logging set-up calls it once the root logger's handlers exist
        "mode.worker:Worker._setup_logging",
    ),
)
