"""Kafka topic and Redis key names: part of the wire contract, so they live here."""

from __future__ import annotations

TICKS = "ticks"
TICKS_DLQ = "ticks.dlq"
SIGNALS = "signals"
# Daily bars (schemas.bar.Bar JSON) keyed by symbol, like `ticks` and with as many
# partitions: the processor merges them into the same per-symbol state.
HISTORY = "history"
# Subscribers' price levels (schemas.level.Level JSON) keyed by level id, written by the
# subscriptions API; compacted, a tombstone (null value) disarms a level.
LEVELS = "levels"
# Values on `signals` that are not signals: kept for inspection, never delivered.
SIGNALS_DLQ = "signals.dlq"
ALERTS_STREAM = "alerts"
ALERTS_PATTERN = "alerts:*"
DLQ_REASON_HEADER = "x-dlq-reason"
# On `signals` (and the processor's re-keyed topic): when the tick behind the record
# entered the pipeline, epoch milliseconds as ASCII digits (the tick's Kafka timestamp).
INGESTED_AT_HEADER = "x-ingested-at"


def alert_channel(kind: str, subject: str) -> str:
    return f"alerts:{kind}:{subject}"
