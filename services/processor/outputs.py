"""The processor's two steps as plain Python: batches of Kafka records in, outputs out.

The Faust agents in `app.py` only move records between topics, tables and these stages,
so the whole at-least-once logic (skip what state already holds, re-send what a crash
may have lost) is testable without a broker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from schemas.dead_letter import DeadLetter, DeadLetterReason, quote_raw
from schemas.signals import AnySignal
from services.detection.rules import Rules

# Forwarded ticks per record on the re-keyed topic (about 130 bytes each).
PAIR_BUNDLE_MAX = 1000


class Record(NamedTuple):
    """What the stages need of a Kafka record."""

    key: bytes | None
    value: bytes
    partition: int
    offset: int
    # When the tick entered the pipeline (the ingestor's Kafka record timestamp, epoch ms),
    # carried to the alerter for the tick-to-alert latency; None when unknown.
    ingested_ms: int | None = None


@dataclass
class Outputs:
    signals: list[AnySignal] = field(default_factory=list)
    # ingested_ms of the tick behind each signal (parallel to `signals`)
    signal_origins: list[int | None] = field(default_factory=list)
    # (pair name, PairTick JSON) for the re-keyed topic
    forwards: list[tuple[str, bytes]] = field(default_factory=list)
    forward_origins: list[int | None] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    # key -> new state, to write only after the outputs above are acknowledged
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluated: int = 0
    # ticks evaluated for the day moves (0 while they are off), and how many of them had no
    # previous close (no day move can be judged without one)
    day_move_ticks: int = 0
    without_previous_close: int = 0
    # ticks read from well-formed records (a bundle counts each of its ticks)
    ticks: int = 0
    # history: what became of each bar (held, applied, overlap, duplicate)
    bars: Counter[str] = field(default_factory=Counter)

    def add_signals(self, signals: Sequence[AnySignal], origin_ms: int | None) -> None:
        self.signals.extend(signals)
        self.signal_origins.extend([origin_ms] * len(signals))

    def rejected_key(self, rec: Record, topic: str, now: datetime, symbol: str, what: str) -> bool:
        """Dead-letter `rec` if it carries a key other than its `what`'s symbol (True then).

        State is partitioned by symbol: a record keyed otherwise sits in another symbol's
        partition and would be judged against the wrong partition's state."""
        if rec.key is None or rec.key == symbol.encode():
            return False
        self.reject(
            rec,
            topic,
            now,
            reason="malformed",
            field="key",
            detail=f"record key {rec.key!r} is not the {what}'s symbol",
            symbol=symbol,
        )
        return True

    def reject(
        self,
        rec: Record,
        topic: str,
        now: datetime,
        *,
        reason: DeadLetterReason,
        field: str | None,
        detail: str,
        symbol: str | None = None,
        index: int | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Dead-letter `rec`, quoting it and naming where it was read (`topic[p]@offset`).

        One tick of a bundle: `index` is its place in the bundle (the source reads
        `topic[p]@offset#index`) and `raw` its own JSON, quoted instead of the record.
        """
        where = f"{topic}[{rec.partition}]@{rec.offset}"
        self.dead.append(
            DeadLetter(
                reason=reason,
                field=field,
                detail=detail,
                raw=_text(rec.value if raw is None else raw),
                source=where if index is None else f"{where}#{index}",
                symbol=symbol,
                received_at=now,
            )
        )

    def pair_records(self, max_ticks: int = PAIR_BUNDLE_MAX) -> list[tuple[str, bytes, int | None]]:
        """The forwards as records for the re-keyed topic: (pair, value, origin ms).

        A pair's forwards of one batch go in one record, a JSON array, in order (up to
        `max_ticks` each); a lone forward stays a plain message. The origin is the
        earliest of the ticks', so a latency read from it includes the wait.
        """
        grouped: dict[str, tuple[list[bytes], list[int | None]]] = {}
        for (pair, payload), origin in zip(self.forwards, self.forward_origins, strict=True):
            entry = grouped.get(pair)
            if entry is None:
                entry = grouped[pair] = ([], [])
            entry[0].append(payload)
            entry[1].append(origin)
        out: list[tuple[str, bytes, int | None]] = []
        for pair, (payloads, origins) in grouped.items():
            for start in range(0, len(payloads), max_ticks):
                chunk = payloads[start : start + max_ticks]
                known = [o for o in origins[start : start + max_ticks] if o is not None]
                value = chunk[0] if len(chunk) == 1 else b"[" + b",".join(chunk) + b"]"
                out.append((pair, value, min(known) if known else None))
        return out


# An A/H listing's key on the re-keyed topic and in the pair table: a divergence pair
# and a listing may name the same two symbols, and their states must not meet.
AH_KEY_PREFIX = "ah:"


def ah_key(listing: str) -> str:
    return AH_KEY_PREFIX + listing


def feeds_of(rules: Rules) -> dict[str, list[str]]:
    """Symbol -> the keys (divergence pairs, A/H listings) its accepted ticks are sent to."""
    out = {s: [r.name for r in rs] for s, rs in rules.pairs_of().items()}
    for symbol, listings in rules.listings_of().items():
        out.setdefault(symbol, []).extend(ah_key(r.name) for r in listings)
    return out


def _text(value: bytes) -> str:
    return quote_raw(value)
