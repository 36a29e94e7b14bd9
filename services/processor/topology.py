"""The processor's topics and state tables, declared on a faust app.

Every source and sink carries raw bytes: the stages decode and encode records
themselves (services/processor/fast_json.py), so faust's codecs never run per record.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from schemas.pair_feed import PAIR_FEED_TOPIC
from services.processor.handler import OutputTopics
from services.processor.tables import STATE_TABLES, StateTable, state_table
from services.runtime.settings import Settings


@dataclass(frozen=True)
class Topology:
    ticks: faust.TopicT
    # The internal re-keyed topic (pair or A/H listing as key) the pair agent reads.
    by_pair: faust.TopicT
    history: faust.TopicT
    outputs: OutputTopics
    symbol_table: StateTable
    pair_table: StateTable

    @property
    def sources(self) -> list[str]:
        """The agents' source topics, each held to `Continuity` by `Rewinds`."""
        return [
            self.ticks.get_topic_name(),
            self.by_pair.get_topic_name(),
            self.history.get_topic_name(),
        ]


def source_topics(settings: Settings) -> list[str]:
    """The topics the agents read (ticks, pair feed, history), as `Topology.sources`."""
    return [settings.ticks_topic, settings.topic(PAIR_FEED_TOPIC), settings.history_topic]


def topic_names(settings: Settings) -> list[str]:
    """Every topic the worker reads or writes, other than faust's own (changelogs and
    the leader topic)."""
    return [
        settings.ticks_topic,
        settings.dlq_topic,
        settings.signals_topic,
        settings.topic(PAIR_FEED_TOPIC),
        settings.history_topic,
    ]


def declare_topology(app: faust.App, settings: Settings) -> Topology:
    def raw_topic(name: str, *, internal: bool = False) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            internal=internal,
        )

    ticks = raw_topic(settings.ticks_topic)
    by_pair = raw_topic(settings.topic(PAIR_FEED_TOPIC), internal=True)
    history = raw_topic(settings.history_topic)
    symbol_table, pair_table = (
        state_table(app, name, settings.partitions) for name in STATE_TABLES
    )
    return Topology(
        ticks=ticks,
        by_pair=by_pair,
        history=history,
        outputs=OutputTopics(settings.signals_topic, by_pair.get_topic_name(), settings.dlq_topic),
        symbol_table=symbol_table,
        pair_table=pair_table,
    )
